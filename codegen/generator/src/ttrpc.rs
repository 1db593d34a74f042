//! ttrpc servers and clients over prost messages, for the shim-side services.
//!
//! The `ttrpc` crate stays the transport; what we emit is the per-method glue: a service trait,
//! a dispatch table for `ttrpc::Server::register_service`, and a typed client, each calling
//! the crate's `ttrpc_rt` module, which decodes and encodes with prost.

use proc_macro2::TokenStream;
use prost_build::{Method, Service};
use quote::{format_ident, quote};

use crate::Error;
use crate::scaffold::{self, Transport};

/// Emits the sync and async ttrpc modules of one service.
pub fn generate(service: &Service) -> Result<TokenStream, Error> {
    if let Some(m) = service
        .methods
        .iter()
        .find(|m| m.client_streaming || m.server_streaming)
    {
        return Err(Error::Unsupported(format!(
            "{}.{}.{} streams; ttrpc bindings cover unary methods only",
            service.package, service.proto_name, m.proto_name
        )));
    }
    let sync = flavour(service, Transport::Ttrpc);
    let asynchronous = flavour(service, Transport::TtrpcAsync);
    Ok(quote! { #sync #asynchronous })
}

/// The rust type of a method's message, seen from the ttrpc module (one level below the
/// package module).
fn message_type(ty: &str) -> TokenStream {
    let path = if ty == "()" || ty.starts_with("::") {
        ty.to_owned()
    } else {
        format!("super::{ty}")
    };
    syn::parse_str(&path).unwrap_or_else(|e| syn::Error::new_spanned(&path, e).to_compile_error())
}

fn flavour(service: &Service, transport: Transport) -> TokenStream {
    let full_name = format!("{}.{}", service.package, service.proto_name);
    let module = format_ident!("{}", transport.module_name(service));
    let trait_name = format_ident!("{}", service.name);
    let client_name = format_ident!("{}Client", service.name);
    let create = format_ident!("create_{}", crate::names::snake(&service.proto_name));
    let (feature, ctx, client_ty) = match transport {
        Transport::Ttrpc => (
            "ttrpc",
            quote!(::ttrpc::TtrpcContext),
            quote!(::ttrpc::Client),
        ),
        _ => (
            "ttrpc-async",
            quote!(::ttrpc::r#async::TtrpcContext),
            quote!(::ttrpc::r#async::Client),
        ),
    };
    let is_async = transport == Transport::TtrpcAsync;
    let flavour_doc = if is_async {
        "Asynchronous"
    } else {
        "Synchronous"
    };
    let module_doc = format!(" {flavour_doc} ttrpc server and client of `{full_name}`.");
    let trait_doc = format!(" Server side of `{full_name}`: one method per RPC.");
    let client_doc = format!(" Client of `{full_name}`.");
    let create_doc = format!(
        " Dispatch table of `{full_name}` for `{}Server::register_service`.",
        if is_async {
            "ttrpc::r#async::"
        } else {
            "ttrpc::"
        }
    );

    let trait_methods = service.methods.iter().map(|m| {
        let name = format_ident!("{}", m.name);
        let input = message_type(&m.input_type);
        let output = message_type(&m.output_type);
        let doc = rpc_doc(&full_name, m);
        if is_async {
            quote! {
                #[doc = #doc]
                fn #name(&self, ctx: &#ctx, req: #input)
                    -> impl ::core::future::Future<Output = ::ttrpc::Result<#output>> + Send;
            }
        } else {
            quote! {
                #[doc = #doc]
                fn #name(&self, ctx: &crate::CallContext, req: #input) -> ::ttrpc::Result<#output>;
            }
        }
    });

    let registrations = service.methods.iter().map(|m| {
        let name = format_ident!("{}", m.name);
        let proto = &m.proto_name;
        if is_async {
            quote! {
                let s = service.clone();
                methods.insert(
                    #proto.to_owned(),
                    crate::ttrpc_rt::unary(move |ctx: #ctx, req| {
                        let s = s.clone();
                        async move { s.#name(&ctx, req).await }
                    }),
                );
            }
        } else {
            let path = format!("/{full_name}/{proto}");
            quote! {
                let s = service.clone();
                methods.insert(
                    #path.to_owned(),
                    crate::ttrpc_rt::unary(move |ctx: &#ctx, req| {
                        s.#name(&crate::CallContext::from(ctx), req)
                    }),
                );
            }
        }
    });

    let create_fn = if is_async {
        quote! {
            #[doc = #create_doc]
            pub fn #create<S: #trait_name>(
                service: ::std::sync::Arc<S>,
            ) -> ::std::collections::HashMap<String, ::ttrpc::r#async::Service> {
                let mut methods: ::std::collections::HashMap<
                    String,
                    Box<dyn ::ttrpc::r#async::MethodHandler + Send + Sync>,
                > = ::std::collections::HashMap::new();
                #({ #registrations })*
                let mut services = ::std::collections::HashMap::new();
                services.insert(
                    #full_name.to_owned(),
                    ::ttrpc::r#async::Service { methods, streams: ::std::collections::HashMap::new() },
                );
                services
            }
        }
    } else {
        quote! {
            #[doc = #create_doc]
            pub fn #create<S: #trait_name + ?Sized>(
                service: ::std::sync::Arc<S>,
            ) -> ::std::collections::HashMap<String, Box<dyn ::ttrpc::MethodHandler + Send + Sync>> {
                let mut methods: ::std::collections::HashMap<
                    String,
                    Box<dyn ::ttrpc::MethodHandler + Send + Sync>,
                > = ::std::collections::HashMap::new();
                #({ #registrations })*
                methods
            }
        }
    };

    let client_methods = service.methods.iter().map(|m| {
        let name = format_ident!("{}", m.name);
        let input = message_type(&m.input_type);
        let output = message_type(&m.output_type);
        let proto = &m.proto_name;
        let doc = rpc_doc(&full_name, m);
        if is_async {
            quote! {
                #[doc = #doc]
                pub async fn #name(&self, ctx: ::ttrpc::context::Context, req: &#input)
                    -> ::ttrpc::Result<#output> {
                    crate::ttrpc_rt::call_async(&self.inner, #full_name, #proto, ctx, req).await
                }
            }
        } else {
            quote! {
                #[doc = #doc]
                pub fn #name(&self, ctx: ::ttrpc::context::Context, req: &#input)
                    -> ::ttrpc::Result<#output> {
                    crate::ttrpc_rt::call(&self.inner, #full_name, #proto, ctx, req)
                }
            }
        }
    });

    let meta = scaffold::meta_macro(service, transport);
    let adapter = if is_async {
        let sync_module = format_ident!("{}", Transport::Ttrpc.module_name(service));
        let adapter_doc = format!(
            " Serves a synchronous implementation of `{full_name}` on the asynchronous server: \
             each call runs on the runtime's blocking pool."
        );
        let methods = service.methods.iter().map(|m| {
            let name = format_ident!("{}", m.name);
            let input = message_type(&m.input_type);
            let output = message_type(&m.output_type);
            quote! {
                fn #name(&self, ctx: &#ctx, req: #input)
                    -> impl ::core::future::Future<Output = ::ttrpc::Result<#output>> + Send {
                    let service = self.0.clone();
                    let ctx = crate::CallContext::from(ctx);
                    crate::ttrpc_rt::blocking(move || service.#name(&ctx, req))
                }
            }
        });
        quote! {
            #[doc = #adapter_doc]
            #[cfg(feature = "ttrpc")]
            pub struct FromSync<S: ?Sized>(pub ::std::sync::Arc<S>);

            #[cfg(feature = "ttrpc")]
            impl<S: super::#sync_module::#trait_name + ?Sized> #trait_name for FromSync<S> {
                #(#methods)*
            }
        }
    } else {
        quote! {}
    };

    quote! {
        #[doc = #module_doc]
        #[cfg(feature = #feature)]
        pub mod #module {
            #[doc = #trait_doc]
            pub trait #trait_name: Send + Sync + 'static {
                #(#trait_methods)*
            }

            #create_fn

            #[doc = #client_doc]
            #[derive(Clone)]
            pub struct #client_name {
                inner: #client_ty,
            }

            impl #client_name {
                /// Wraps a connected ttrpc client.
                pub fn new(inner: #client_ty) -> Self {
                    Self { inner }
                }

                #(#client_methods)*
            }

            #adapter

            #meta
        }
    }
}

fn rpc_doc(full_name: &str, m: &Method) -> String {
    format!(" RPC `{full_name}.{}`.", m.proto_name)
}
