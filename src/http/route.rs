//! How one route answers by method: [`methods!`](crate::methods) turns one list of methods and
//! handlers into the route's template, its `Allow` value and its dispatch, so the three cannot
//! disagree.
//!
//! `GET` also answers `HEAD` (workerd drops the body) and is listed as `GET, HEAD`. `OPTIONS`
//! on any route is a CORS preflight. A method the list lacks, or one the worker crate does not
//! know (`PURGE`, `PROPFIND`, …), is a 405 problem with the route's `Allow`.

/// `methods!(cx, "/template", { GET => handler, POST => handler, … })`: sets the request's
/// route template, then answers with the handler of the request's method (an expression that
/// may `.await` and uses `cx`), a preflight for `OPTIONS`, or 405 with `Allow` built from the
/// same list in its order.
#[doc(hidden)]
#[macro_export]
macro_rules! methods {
    ($cx:ident, $template:literal, { $($method:ident => $handler:expr),+ $(,)? }) => {{
        const ALLOW: &str = $crate::allow_header!($($method),+);
        $cx.route = $template;
        if $cx.unknown_method.is_some() {
            Err($crate::http::problem::ApiError::MethodNotAllowed { allow: ALLOW })
        } else {
            match $cx.method {
                ::worker::Method::Options => $crate::cors::preflight($cx),
                $($crate::method_pattern!($method) => $handler,)+
                #[allow(unreachable_patterns)]
                _ => Err($crate::http::problem::ApiError::MethodNotAllowed { allow: ALLOW }),
            }
        }
    }};
}

/// The `Allow` value of a list of [`methods!`](crate::methods) names.
#[doc(hidden)]
#[macro_export]
macro_rules! allow_header {
    ($first:ident $(, $rest:ident)*) => {
        concat!($crate::method_name!($first) $(, ", ", $crate::method_name!($rest))*)
    };
}

/// What one [`methods!`](crate::methods) name puts into `Allow`.
#[doc(hidden)]
#[macro_export]
macro_rules! method_name {
    (GET) => {
        "GET, HEAD"
    };
    (POST) => {
        "POST"
    };
    (PUT) => {
        "PUT"
    };
    (DELETE) => {
        "DELETE"
    };
}

/// The methods one [`methods!`](crate::methods) name answers.
#[doc(hidden)]
#[macro_export]
macro_rules! method_pattern {
    (GET) => {
        ::worker::Method::Get | ::worker::Method::Head
    };
    (POST) => {
        ::worker::Method::Post
    };
    (PUT) => {
        ::worker::Method::Put
    };
    (DELETE) => {
        ::worker::Method::Delete
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn allow_lists_the_methods_in_order_with_head_after_get() {
        assert_eq!(crate::allow_header!(GET), "GET, HEAD");
        assert_eq!(
            crate::allow_header!(GET, PUT, DELETE),
            "GET, HEAD, PUT, DELETE"
        );
        assert_eq!(crate::allow_header!(PUT, DELETE), "PUT, DELETE");
        assert_eq!(crate::allow_header!(POST), "POST");
    }
}
