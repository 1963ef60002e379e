//! The request in flight, as the runtime hands it over, and `crypto.randomUUID()`.
//!
//! Bypasses the worker crate: converting the runtime's request to `worker::Request` would read
//! `request.cf` on every request, which costs more than most routes do; and header values come
//! through [`super::text`] rather than wasm-bindgen's string conversion.

use super::body::BodyReader;

/// The runtime's request, with its headers object fetched once.
pub struct Request {
    req: web_sys::Request,
    headers: web_sys::Headers,
}

impl Request {
    pub(super) fn new(req: web_sys::Request) -> Self {
        let headers = req.headers();
        Self { req, headers }
    }

    /// The method's name, as the client sent it.
    #[must_use]
    pub fn method(&self) -> String {
        self.req.method()
    }

    /// The absolute URL.
    #[must_use]
    pub fn url(&self) -> String {
        self.req.url()
    }

    /// A header's value through [`super::text::header`]; `None` when absent.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<String> {
        super::text::header(&self.headers, name)
    }

    /// A header's value through wasm-bindgen's own conversion (for a short value read once).
    #[must_use]
    pub fn header_value(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    /// A reader of the body: `None` when there is no body, `Some(Err)` when it cannot be
    /// read.
    #[must_use]
    pub fn body_reader(&self) -> Option<Result<BodyReader, ()>> {
        self.req.body().map(|stream| BodyReader::of(&stream))
    }

    /// Whether the body has been read.
    #[must_use]
    pub fn body_used(&self) -> bool {
        self.req.body_used()
    }

    pub(super) fn raw(&self) -> &web_sys::Request {
        &self.req
    }
}

/// `crypto.randomUUID()`, when the runtime has it.
#[cfg(target_arch = "wasm32")]
#[must_use]
pub fn random_uuid() -> Option<String> {
    random_uuid_js().ok()
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = crypto, js_name = randomUUID)]
    fn random_uuid_js() -> Result<String, wasm_bindgen::JsValue>;
}
