//! XSD validation with libxml2: each schema compiled once, every error kept with the XPath of
//! the node it is about.
//!
//! libxml2 is not documented as safe across threads, so everything here is `!Send` (raw
//! pointers inside) and lives on the thread that made it; `service` runs it on its own threads.

use std::cell::RefCell;
use std::ffi::{CStr, c_void};
use std::path::{Path, PathBuf};

use libxml::bindings;
use libxml::parser::{Parser, ParserOptions};
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};

/// One schema error: what libxml2 said, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XsdError {
    pub message: String,
    pub xpath: String,
    pub line: Option<u32>,
}

/// A compiled schema with its validation context.
pub struct Schema {
    ctx: RefCell<SchemaValidationContext>,
    // Boxed so the pointer handed to libxml2 stays put; read and cleared around each run.
    errors: Box<RefCell<Vec<XsdError>>>,
}

/// Receives libxml2's structured errors during a validation run.
///
/// The libxml crate collects errors too, but without the node; libxml2 gives the node, and
/// `xmlGetNodePath` turns it into the XPath a diagnostic must carry.
unsafe extern "C" fn collect(user: *mut c_void, error: bindings::xmlErrorPtr) {
    if user.is_null() || error.is_null() {
        return;
    }
    // SAFETY: `user` is the `RefCell<Vec<XsdError>>` owned by the `Schema` whose context is
    // running; libxml2 calls back on this thread, during `xmlSchemaValidateDoc`, with a valid
    // error record.
    let (sink, e) = unsafe { (&*(user as *const RefCell<Vec<XsdError>>), &*error) };
    let message = if e.message.is_null() {
        "schema validation error".to_owned()
    } else {
        // SAFETY: libxml2 error messages are NUL-terminated C strings.
        unsafe { CStr::from_ptr(e.message) }
            .to_string_lossy()
            .trim()
            .to_owned()
    };
    let mut xpath = "/".to_owned();
    if !e.node.is_null() {
        // SAFETY: the node belongs to the document being validated; the returned string is
        // allocated by libxml2 and freed with its own allocator.
        unsafe {
            let p = bindings::xmlGetNodePath(e.node as *const bindings::xmlNode);
            if !p.is_null() {
                xpath = CStr::from_ptr(p as *const std::ffi::c_char)
                    .to_string_lossy()
                    .into_owned();
                if let Some(free) = bindings::xmlFree {
                    free(p as *mut c_void);
                }
            }
        }
    }
    if let Ok(mut v) = sink.try_borrow_mut() {
        v.push(XsdError {
            message,
            xpath,
            line: u32::try_from(e.line).ok().filter(|l| *l > 0),
        });
    }
}

impl Schema {
    /// Compiles the schema in `file` (its imports and includes are read relative to it).
    pub fn compile(file: &Path) -> Result<Schema, String> {
        check_locations(file, &mut Vec::new())?;
        let path = file
            .to_str()
            .ok_or_else(|| format!("{}: not a UTF-8 path", file.display()))?;
        let mut parser = SchemaParserContext::from_file(path);
        let ctx = SchemaValidationContext::from_parser(&mut parser).map_err(|errs| {
            let msgs: Vec<String> = errs
                .iter()
                .map(|e| e.message.as_deref().unwrap_or("?").trim().to_owned())
                .collect();
            format!(
                "{}: schema does not compile: {}",
                file.display(),
                msgs.join("; ")
            )
        })?;
        let errors: Box<RefCell<Vec<XsdError>>> = Box::default();
        // SAFETY: the context is valid for the life of `Schema`, and so is the boxed sink it
        // is given (dropped after the context, see Drop order of the fields).
        unsafe {
            bindings::xmlSchemaSetValidStructuredErrors(
                ctx.as_ptr(),
                Some(collect),
                &*errors as *const RefCell<Vec<XsdError>> as *mut c_void,
            );
        }
        Ok(Schema {
            ctx: RefCell::new(ctx),
            errors,
        })
    }

    /// Validates a well-formed document (the caller has already refused DTDs and entities,
    /// so libxml2 never sees them). Every error, in document order.
    pub fn validate(&self, xml: &str) -> Vec<XsdError> {
        let opts = ParserOptions {
            no_net: true,
            no_error: true,
            no_warning: true,
            ..ParserOptions::default()
        };
        let doc = match Parser::default().parse_string_with_options(xml, opts) {
            Ok(d) => d,
            Err(e) => {
                return vec![XsdError {
                    message: format!("libxml2 could not parse the document: {e:?}"),
                    xpath: "/".into(),
                    line: None,
                }];
            }
        };
        self.errors.borrow_mut().clear();
        let rc = self.ctx.borrow_mut().validate_document(&doc);
        let mut out = std::mem::take(&mut *self.errors.borrow_mut());
        if rc.is_err() && out.is_empty() {
            out.push(XsdError {
                message: "schema validation failed without a diagnostic".into(),
                xpath: "/".into(),
                line: None,
            });
        }
        out
    }
}

/// Refuses schemas that would make libxml2 reach the network or leave the file system tree of
/// the packages: every `schemaLocation` of an import, include or redefine must be a relative
/// path to a file that exists. Followed recursively.
fn check_locations(file: &Path, seen: &mut Vec<PathBuf>) -> Result<(), String> {
    let canon = file
        .canonicalize()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if seen.contains(&canon) {
        return Ok(());
    }
    seen.push(canon);
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let doc = roxmltree::Document::parse(&text)
        .map_err(|e| format!("{}: not well-formed XML: {e}", file.display()))?;
    for n in doc.descendants().filter(|n| {
        n.tag_name().namespace() == Some("http://www.w3.org/2001/XMLSchema")
            && matches!(n.tag_name().name(), "import" | "include" | "redefine")
    }) {
        let Some(loc) = n.attribute("schemaLocation") else {
            continue;
        };
        if loc.contains(':') || loc.starts_with('/') || loc.starts_with('\\') {
            return Err(format!(
                "{}: schemaLocation {loc:?} must be a relative path inside the packages (no URLs, no absolute paths)",
                file.display()
            ));
        }
        let next = file.parent().unwrap_or(Path::new(".")).join(loc);
        if !next.is_file() {
            return Err(format!(
                "{}: schemaLocation {loc:?} names no file",
                file.display()
            ));
        }
        check_locations(&next, seen)?;
    }
    Ok(())
}
