//! A Durable Object stub, called over `fetch`, and the time of an object's alarm.
//!
//! Bypasses the worker crate for the calls: its `Stub::fetch_with_request` and
//! `Response::text` await through `JsFuture`; here the stub is called directly and both the
//! call and the read of the answer are awaited through [`super::runtime::settled`], so a
//! request torn down in the middle is let go of.

use wasm_bindgen::{JsCast as _, JsValue};

/// A Durable Object stub as the runtime hands it over.
pub struct ObjectStub(worker::worker_sys::DurableObject);

/// Why a call to an object did not give an answer.
pub enum CallError {
    /// The request could not be built.
    Build(worker::Error),
    /// The call failed (the object, or the way to it).
    Failed(worker::Error),
}

/// An object's answer, its body not yet read.
pub struct Answer(web_sys::Response);

impl ObjectStub {
    /// The stub of `stub`'s object, to be called directly.
    #[must_use]
    pub fn of(stub: worker::Stub) -> Self {
        Self(stub.into_rpc())
    }

    /// POSTs `json` (with `Content-Type: application/json`) to `url` on the object.
    ///
    /// # Errors
    /// [`CallError::Build`] when the request cannot be built, [`CallError::Failed`] when the
    /// call fails.
    pub async fn post_json(&self, url: &str, json: &str) -> Result<Answer, CallError> {
        let build = |e: JsValue| CallError::Build(worker::Error::from(e));
        let headers = web_sys::Headers::new().map_err(build)?;
        headers
            .set("Content-Type", "application/json")
            .map_err(build)?;
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&JsValue::from_str(json));
        let req = web_sys::Request::new_with_str_and_init(url, &init).map_err(build)?;
        let failed = |e: JsValue| CallError::Failed(worker::Error::from(e));
        let promise = self.0.fetch_with_request(&req).map_err(failed)?;
        let resp = super::runtime::settled(promise).await.map_err(failed)?;
        Ok(Answer(resp.unchecked_into()))
    }

    /// GETs `url` on the object.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn get(&self, url: &str) -> Result<Answer, worker::Error> {
        let promise = self.0.fetch_with_str(url).map_err(worker::Error::from)?;
        let resp = super::runtime::settled(promise)
            .await
            .map_err(worker::Error::from)?;
        Ok(Answer(resp.unchecked_into()))
    }
}

impl Answer {
    /// The answer's status.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    /// The answer's body as text; `None` when it is not text.
    ///
    /// # Errors
    /// When the body cannot be read.
    pub async fn text(self) -> Result<Option<String>, worker::Error> {
        let promise = self.0.text().map_err(worker::Error::from)?;
        let text = super::runtime::settled(promise)
            .await
            .map_err(worker::Error::from)?;
        Ok(super::text::text(&text))
    }
}

/// The alarm time `ms` milliseconds after the epoch.
#[must_use]
pub fn at_time(ms: u64) -> worker::ScheduledTime {
    #[allow(clippy::cast_precision_loss)] // real dates are far below 2^53 ms
    let ms = ms as f64;
    worker::ScheduledTime::new(js_sys::Date::new(&JsValue::from_f64(ms)))
}
