//! The relay's OpenAPI 3.1 description, generated from the code: every
//! route is registered together with its `#[utoipa::path]` annotation
//! (`utoipa_axum::routes!` in `api::routes`), and every body schema comes
//! from the `occ-protocol` types themselves (feature `openapi`), so the
//! description cannot drift from what the relay serves. `occ-relay openapi`
//! prints it; `docs/openapi.json` is that output, checked by a test;
//! schemathesis exercises a dev relay against it (`scripts/schemathesis.sh`).

use occ_protocol::api::ErrorBody;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// What every route may answer besides success: `{"error": "..."}` with
/// one of these statuses.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a description, never built
pub(crate) enum Refused {
    /// Malformed or refused input; the body says what and why.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No valid bearer token (authenticated routes), or a revoked device.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// No such user, device, message or route.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The method is not served on this route.
    #[response(status = 405)]
    MethodNotAllowed(ErrorBody),
    /// A conflicting state: a replayed registration, a device of another
    /// user, a further device without a link.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The message expired.
    #[response(status = 410)]
    Gone(ErrorBody),
    /// The body is larger than the relay accepts.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not JSON.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// Rate limited; retry after the `Retry-After` seconds.
    #[response(status = 429, headers(("retry-after" = u32, description = "seconds to wait")))]
    RateLimited(ErrorBody),
    /// Too busy (token store full); retry shortly.
    #[response(status = 503, headers(("retry-after" = u32, description = "seconds to wait")))]
    Busy(ErrorBody),
    /// An inbox quota is full; nothing of the batch was queued.
    #[response(status = 507)]
    QuotaExceeded(ErrorBody),
}

/// The description's frame: title, version, the bearer scheme.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "occ relay",
        description = "Store-and-forward relay of end-to-end encrypted envelopes. \
            Identity answers are signed by the service key over the client's \
            `x-occ-nonce` (see occ-protocol `signed_answer_message`).",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerScheme)
)]
pub(crate) struct ApiDoc;

/// Adds the `bearer` security scheme (a token from `/v1/auth/token`).
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The relay API's OpenAPI 3.1 description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::api::routes().split_for_parts().1
}

/// [`openapi`] as pretty JSON (what `occ-relay openapi` prints).
pub fn openapi_json() -> String {
    openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
