//! The `ASSETS` binding (the storefront's static files), reduced to the two fetches
//! `crate::assets` makes.
//!
//! Bypasses the worker crate: `worker::Fetcher::fetch_request` converts the request to a
//! `worker::Request` first (which reads `request.cf`) and awaits through `JsFuture`; here the
//! runtime's request is passed on as it came and the answer awaited through
//! [`super::runtime::settled`].

use wasm_bindgen::{JsCast, JsValue};
use worker::{Env, Response};

use super::request::Request;

/// The `ASSETS` fetcher.
pub struct Assets(worker::worker_sys::Fetcher);

/// The assets service's answer.
pub struct Answer(web_sys::Response);

impl Assets {
    /// The binding `name`, when it is an object.
    #[must_use]
    pub fn of(env: &Env, name: &str) -> Option<Self> {
        super::binding(env, name).map(|b| Self(b.unchecked_into()))
    }

    /// Fetches `req` itself from the service.
    ///
    /// # Errors
    /// When the fetch throws, rejects, or answers no response.
    pub async fn fetch(&self, req: &Request) -> Result<Answer, worker::Error> {
        answer(self.0.fetch(req.raw())).await
    }

    /// A `HEAD` of `url`, its redirects not followed: whether the asset exists.
    ///
    /// # Errors
    /// As [`Assets::fetch`].
    pub async fn head(&self, url: &str) -> Result<Answer, worker::Error> {
        let init = web_sys::RequestInit::new();
        init.set_method("HEAD");
        init.set_redirect(web_sys::RequestRedirect::Manual);
        answer(self.0.fetch_with_str_and_init(url, &init)).await
    }
}

async fn answer(promise: Result<js_sys::Promise, JsValue>) -> Result<Answer, worker::Error> {
    let value = super::runtime::settled(promise?).await?;
    value.dyn_into().map(Answer).map_err(worker::Error::from)
}

impl Answer {
    #[must_use]
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    /// The answer as a response of edgecart's: its status, a copy of its headers (the
    /// service's are immutable, so the request id could not be added) and its body stream.
    ///
    /// # Errors
    /// When the headers cannot be copied.
    pub fn into_response(self) -> Result<Response, worker::Error> {
        let headers = web_sys::Headers::new_with_headers(&self.0.headers())?;
        let builder = Response::builder()
            .with_status(self.0.status())
            .with_headers(worker::Headers(headers));
        Ok(match self.0.body() {
            Some(stream) => builder.stream(stream),
            None => builder.empty(),
        })
    }
}
