//! Scaffolding for the services generated into `ctrd-api`.
//!
//! Put [`macro@service`] on an impl of a generated service trait and write only the methods you
//! support, in plain Rust. The macro then:
//!
//! - adds every method you left out, answering "unimplemented" in the transport's own terms
//!   (`tonic::Status::unimplemented`, or ttrpc's `UNIMPLEMENTED` code);
//! - for tonic traits, adds the `#[async_trait]` attribute if you did not, and a boxed stream
//!   type for each server-streaming method you left out;
//! - wraps each method you wrote in a `tracing` span named `rpc`, with the service and method;
//! - adds an inherent method that turns your value into what the server registers:
//!   `into_<trait>_server()` for tonic (a `FooServer<Self>`), `into_<trait>_service()` for ttrpc
//!   (the map `register_service` takes). Choose another name with `register = name`.
//!
//! ```
//! use ctrd_api::containerd::services::version::v1::{VersionResponse, version_server};
//!
//! struct Version;
//!
//! #[ctrd_macros::service(ctrd_api::containerd::services::version::v1::version_server::Version)]
//! impl version_server::Version for Version {
//!     async fn version(
//!         &self,
//!         _request: tonic::Request<()>,
//!     ) -> Result<tonic::Response<VersionResponse>, tonic::Status> {
//!         Ok(tonic::Response::new(VersionResponse {
//!             version: "1.0.0".into(),
//!             revision: String::new(),
//!         }))
//!     }
//! }
//!
//! let _server = Version.into_version_server();
//! ```
//!
//! The same on a shim service over ttrpc, where the trait lives in `<service>_ttrpc` (sync) or
//! `<service>_ttrpc_async` (async):
//!
//! ```
//! use ctrd_api::containerd::task::v3::{ConnectRequest, ConnectResponse, task_ttrpc_async};
//! use ctrd_api::ttrpc::r#async::TtrpcContext;
//!
//! struct Shim;
//!
//! #[ctrd_macros::service(ctrd_api::containerd::task::v3::task_ttrpc_async::Task)]
//! impl task_ttrpc_async::Task for Shim {
//!     async fn connect(
//!         &self,
//!         _ctx: &TtrpcContext,
//!         req: ConnectRequest,
//!     ) -> ctrd_api::ttrpc::Result<ConnectResponse> {
//!         Ok(ConnectResponse { shim_pid: std::process::id(), task_pid: 0, version: req.id })
//!     }
//! }
//!
//! let methods = Shim.into_task_service();
//! assert!(methods.contains_key("containerd.task.v3.Task"));
//! ```
//!
//! The trait must be named by its full path through the generated module
//! (`krate::package::path::<module>::Trait`): the macro finds the service's description next
//! to it, under a name computed from that path.

mod complete;
mod meta;

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Path, Token};

use crate::meta::Transport;

/// The arguments of `#[service(...)]`.
struct Args {
    path: Path,
    options: proc_macro2::TokenStream,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let path = input.parse()?;
        let options = if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            input.parse()?
        } else {
            proc_macro2::TokenStream::new()
        };
        Ok(Args { path, options })
    }
}

/// Completes an impl of a generated service trait; see the [crate documentation](crate).
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    match service_impl(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn service_impl(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let Args { path, options } = syn::parse2(attr)?;
    // Check the options now, where errors point at the user's attribute.
    let _: meta::Options = syn::parse2(options.clone())?;
    let usage_impl = "`#[ctrd_macros::service]` goes on an impl of a generated service trait \
                      (`impl Trait for Type`)";
    let parsed: syn::ItemImpl =
        syn::parse2(item.clone()).map_err(|e| syn::Error::new(e.span(), usage_impl))?;
    if parsed.trait_.is_none() {
        return Err(syn::Error::new_spanned(
            &parsed.self_ty,
            format!("{usage_impl}, not an inherent impl"),
        ));
    }

    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let usage = "expected the trait's full path: `krate::package::path::<service>_server::Trait`, \
                 `..::<service>_ttrpc::Trait` or `..::<service>_ttrpc_async::Trait`";
    if segments.len() < 3 {
        return Err(syn::Error::new_spanned(&path, usage));
    }
    let trait_name = &segments[segments.len() - 1];
    let module = &segments[segments.len() - 2];
    let package = &segments[1..segments.len() - 2];
    let transport =
        Transport::from_module(module).ok_or_else(|| syn::Error::new_spanned(&path, usage))?;
    let macro_name = format_ident!(
        "__ctrd_svc_{}_{}_{}",
        package.join("_"),
        trait_name.to_lowercase(),
        transport.keyword()
    );
    let krate_segment = &path.segments[0].ident;
    let leading = path.leading_colon;
    Ok(quote! {
        #leading #krate_segment::#macro_name! {
            ::ctrd_macros::__complete_service! {
                options = { #options },
                item = { #item },
            }
        }
    })
}

/// Second stage of [`macro@service`], called back by the generated description; not an API.
#[doc(hidden)]
#[proc_macro]
pub fn __complete_service(input: TokenStream) -> TokenStream {
    match syn::parse::<meta::Input>(input).and_then(complete::expand) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}
