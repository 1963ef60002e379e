//! Body streams: reading a request body chunk by chunk, and cancelling a stream that will not
//! be read.
//!
//! Bypasses the worker crate: its `ByteStream` awaits through `JsFuture`, which a request torn
//! down in the middle of its upload would leave in the isolate; each read here is awaited
//! through [`super::runtime::settled`].

use wasm_bindgen::JsCast as _;

/// A request body's reader: its chunks, each read awaited through
/// [`super::runtime::settled`].
pub struct BodyReader(ReadableStreamReader);

/// One chunk of a body, still in JS memory.
pub struct Chunk(js_sys::Uint8Array);

impl Chunk {
    /// Its length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.length() as usize
    }

    /// Whether it is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the chunk into `into`, which must be exactly [`Chunk::len`] long.
    pub fn copy_to(&self, into: &mut [u8]) {
        self.0.copy_to(into);
    }
}

impl BodyReader {
    pub(super) fn of(stream: &web_sys::ReadableStream) -> Result<Self, ()> {
        stream
            .unchecked_ref::<BodyStream>()
            .get_reader()
            .map(Self)
            .map_err(drop)
    }

    /// The next chunk; `None` at the end of the body; `Err` when it cannot be read (or a chunk
    /// is not bytes).
    ///
    /// # Errors
    /// As above.
    pub async fn next(&self) -> Result<Option<Chunk>, ()> {
        let promise = self.0.read().map_err(drop)?;
        let result = super::runtime::settled(promise).await.map_err(drop)?;
        let field = |name: &str| js_sys::Reflect::get(&result, &name.into()).map_err(drop);
        if field("done")?.as_bool() == Some(true) {
            return Ok(None);
        }
        field("value")?
            .dyn_into()
            .map(|chunk| Some(Chunk(chunk)))
            .map_err(drop)
    }

    /// Gives the stream back (as `ByteStream` did when dropped), once reading is over. Not in
    /// `Drop`: a drop can run outside the request (see `runtime::run`).
    pub fn release(&self) {
        let _ = self.0.release_lock();
    }
}

/// Cancels a body stream that will not be read: the source (a cache entry's body) is
/// released now instead of when the request ends. A stream that cannot be cancelled (already
/// locked or closed) is left as it is; the rejection is handled in JS, never unhandled.
pub fn discard(stream: &web_sys::ReadableStream) {
    discard_stream(stream);
}

/// [`discard`] for a response body that may be a stream (nothing to do otherwise).
pub fn discard_body(body: &worker::ResponseBody) {
    if let worker::ResponseBody::Stream(stream) = body {
        discard(stream);
    }
}

#[wasm_bindgen::prelude::wasm_bindgen(
    inline_js = "export function discard_stream(s) { try { s.cancel().catch(() => {}); } catch {} }"
)]
extern "C" {
    fn discard_stream(stream: &web_sys::ReadableStream);
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A `ReadableStreamDefaultReader`.
    type ReadableStreamReader;

    /// A request body (`web_sys::ReadableStream`), for its `getReader`.
    type BodyStream;

    #[wasm_bindgen(method, catch, js_name = getReader)]
    fn get_reader(this: &BodyStream) -> Result<ReadableStreamReader, wasm_bindgen::JsValue>;

    #[wasm_bindgen(method, catch, js_name = releaseLock)]
    fn release_lock(this: &ReadableStreamReader) -> Result<(), wasm_bindgen::JsValue>;

    #[wasm_bindgen(method, catch)]
    fn read(this: &ReadableStreamReader) -> Result<js_sys::Promise, wasm_bindgen::JsValue>;
}
