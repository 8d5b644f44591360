-- Evidence kept with a legally significant message: the trusted third party's signed receipt
-- and its time stamp (token and the receipt's path to the stamped root). Written with the
-- message (or when it arrives from the node that obtained it) and never changed.
CREATE TABLE evidence (
    msg BIGINT NOT NULL REFERENCES messages (id),
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (msg, kind)
);
