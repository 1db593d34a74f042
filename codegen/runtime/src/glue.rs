//! Glue between the `ttrpc` crate, which carries raw payloads, and prost messages.
//!
//! Generated ttrpc servers and clients call into this module; it decodes requests, encodes
//! responses and turns handler errors into ttrpc statuses, once for every method. Handlers
//! return [`status`] errors to answer with a ttrpc code.

use std::collections::HashMap;
use std::marker::PhantomData;

use prost::Message;
use ttrpc::{Code, Request, Response};

/// What a synchronous handler learns about its call: the request's metadata and timeout.
///
/// Synchronous service traits take this instead of the `ttrpc` crate's own context, so a
/// synchronous implementation can also be served by the asynchronous server (through the
/// generated `FromSync` adapters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// Request metadata, by key.
    pub metadata: HashMap<String, Vec<String>>,
    /// The client's timeout in nanoseconds, 0 for none.
    pub timeout_nano: i64,
}

#[cfg(feature = "ttrpc")]
impl From<&ttrpc::TtrpcContext> for CallContext {
    fn from(ctx: &ttrpc::TtrpcContext) -> Self {
        CallContext {
            metadata: ctx.metadata.clone(),
            timeout_nano: ctx.timeout_nano,
        }
    }
}

#[cfg(feature = "ttrpc-async")]
impl From<&ttrpc::r#async::TtrpcContext> for CallContext {
    fn from(ctx: &ttrpc::r#async::TtrpcContext) -> Self {
        CallContext {
            metadata: ctx.metadata.clone(),
            timeout_nano: ctx.timeout_nano,
        }
    }
}

/// Runs a synchronous handler on the runtime's blocking pool, for the `FromSync` adapters.
#[cfg(all(feature = "ttrpc", feature = "ttrpc-async"))]
pub async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> ttrpc::Result<T> + Send + 'static,
) -> ttrpc::Result<T> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| status(Code::INTERNAL, format!("handler failed: {e}")))?
}

/// A status error with `code` and `message`, as handlers return it.
pub fn status(code: Code, message: impl ToString) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message))
}

/// The error a generated server returns for a method its implementer did not provide.
pub fn unimplemented(service: &str, method: &str) -> ttrpc::Error {
    status(
        Code::UNIMPLEMENTED,
        format!("/{service}/{method} is not implemented"),
    )
}

/// Decodes a request payload into its message type.
fn decode_request<M: Message + Default>(payload: &[u8]) -> ttrpc::Result<M> {
    M::decode(payload)
        .map_err(|e| status(Code::INVALID_ARGUMENT, format!("malformed request: {e}")))
}

/// Builds the wire response for a handler's result.
fn response<M: Message>(result: ttrpc::Result<M>) -> Response {
    let mut res = Response::new();
    match result {
        Ok(message) => {
            res.set_status(ttrpc::get_status(Code::OK, ""));
            res.payload = message.encode_to_vec();
        }
        Err(ttrpc::Error::RpcStatus(s)) => res.set_status(s),
        Err(e) => res.set_status(ttrpc::get_status(Code::UNKNOWN, e.to_string())),
    }
    res
}

/// Builds a request envelope for `/{service}/{method}` carrying `message`.
fn request<M: Message>(
    service: &str,
    method: &str,
    ctx: ttrpc::context::Context,
    message: &M,
) -> Request {
    let mut req = Request::new();
    req.service = service.to_owned();
    req.method = method.to_owned();
    req.timeout_nano = ctx.timeout_nano;
    req.metadata = ttrpc::context::to_pb(ctx.metadata);
    req.payload = message.encode_to_vec();
    req
}

/// Decodes a response payload into its message type.
fn decode_response<M: Message + Default>(res: &Response) -> ttrpc::Result<M> {
    M::decode(res.payload.as_slice())
        .map_err(|e| ttrpc::Error::Others(format!("malformed response: {e}")))
}

/// A method handler built from a function of the decoded request.
pub struct Unary<F, Req, Resp> {
    call: F,
    types: PhantomData<fn(Req) -> Resp>,
}

/// Wraps a function of the decoded request as a ttrpc method handler.
pub fn unary<F, Req, Resp>(call: F) -> Box<Unary<F, Req, Resp>> {
    Box::new(Unary {
        call,
        types: PhantomData,
    })
}

#[cfg(feature = "ttrpc")]
impl<F, Req, Resp> ttrpc::MethodHandler for Unary<F, Req, Resp>
where
    F: Fn(&ttrpc::TtrpcContext, Req) -> ttrpc::Result<Resp>,
    Req: Message + Default,
    Resp: Message,
{
    fn handler(&self, ctx: ttrpc::TtrpcContext, req: Request) -> ttrpc::Result<()> {
        let result = decode_request(&req.payload).and_then(|message| (self.call)(&ctx, message));
        ctx.respond(ctx.mh.stream_id, response(result))
    }
}

#[cfg(feature = "ttrpc-async")]
#[async_trait::async_trait]
impl<F, Fut, Req, Resp> ttrpc::r#async::MethodHandler for Unary<F, Req, Resp>
where
    F: Fn(ttrpc::r#async::TtrpcContext, Req) -> Fut + Send + Sync,
    Fut: Future<Output = ttrpc::Result<Resp>> + Send,
    Req: Message + Default + Send,
    Resp: Message,
{
    async fn handler(
        &self,
        ctx: ttrpc::r#async::TtrpcContext,
        req: Request,
    ) -> ttrpc::Result<Response> {
        let result = match decode_request(&req.payload) {
            Ok(message) => (self.call)(ctx, message).await,
            Err(e) => Err(e),
        };
        Ok(response(result))
    }
}

/// Calls `/{service}/{method}` on a synchronous client.
#[cfg(feature = "ttrpc")]
pub fn call<Req: Message, Resp: Message + Default>(
    client: &ttrpc::Client,
    service: &str,
    method: &str,
    ctx: ttrpc::context::Context,
    message: &Req,
) -> ttrpc::Result<Resp> {
    let res = client.request(request(service, method, ctx, message))?;
    decode_response(&res)
}

/// Calls `/{service}/{method}` on an asynchronous client.
#[cfg(feature = "ttrpc-async")]
pub async fn call_async<Req: Message, Resp: Message + Default>(
    client: &ttrpc::r#async::Client,
    service: &str,
    method: &str,
    ctx: ttrpc::context::Context,
    message: &Req,
) -> ttrpc::Result<Resp> {
    let res = client
        .request(request(service, method, ctx, message))
        .await?;
    decode_response(&res)
}
