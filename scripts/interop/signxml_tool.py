"""Sign or verify an enveloped XMLDSig signature with signxml (an implementation nobody on
this project wrote), for the interoperability test in crates/dsig/tests/dsig.rs.

    signxml_tool.py sign ALG KEY.pem CERT.pem IN.xml OUT.xml   (ALG: rsa-sha256 | ecdsa-sha256)
    signxml_tool.py verify CERT.pem IN.xml                     (exit 0 when it verifies)
"""
import sys

from lxml import etree
from signxml import SignatureConstructionMethod, XMLSigner, XMLVerifier

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


def main(argv):
    if argv[1] == "sign":
        alg, key, cert, src, out = argv[2:7]
        root = etree.parse(src).getroot()
        signer = XMLSigner(
            method=SignatureConstructionMethod.enveloped,
            signature_algorithm=alg,
            digest_algorithm="sha256",
            c14n_algorithm=EXC_C14N,
        )
        signed = signer.sign(root, key=open(key, "rb").read(), cert=open(cert).read())
        open(out, "wb").write(etree.tostring(signed))
        return 0
    if argv[1] == "verify":
        cert, src = argv[2:4]
        try:
            XMLVerifier().verify(
                open(src, "rb").read(), x509_cert=open(cert).read(), expect_references=1
            )
        except Exception as e:  # signxml raises several kinds; any of them is a refusal
            print(f"refused: {e}", file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
