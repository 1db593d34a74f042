//! Completing a service impl: default methods, spans, registration.

use std::collections::HashSet;

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{ImplItem, ImplItemFn};

use crate::meta::{Input, Meta, Method, Transport};

/// Expands the user's impl with everything the trait needs.
pub fn expand(input: Input) -> syn::Result<TokenStream> {
    let Input {
        options,
        mut item,
        meta,
    } = input;
    let krate = &meta.krate;
    let tracing = quote!(#krate::__private::tracing);

    let provided: HashSet<String> = item
        .items
        .iter()
        .filter_map(|i| match i {
            ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
            _ => None,
        })
        .collect();
    let provided_types: HashSet<String> = item
        .items
        .iter()
        .filter_map(|i| match i {
            ImplItem::Type(t) => Some(t.ident.to_string()),
            _ => None,
        })
        .collect();

    let known: HashSet<String> = meta.methods.iter().map(|m| m.name.to_string()).collect();
    for i in &item.items {
        if let ImplItem::Fn(f) = i
            && !known.contains(&f.sig.ident.to_string())
        {
            return Err(syn::Error::new_spanned(
                &f.sig.ident,
                format!(
                    "`{}` is not a method of {}",
                    f.sig.ident,
                    meta.service.value()
                ),
            ));
        }
    }

    for i in &mut item.items {
        if let ImplItem::Fn(f) = i
            && let Some(m) = meta.methods.iter().find(|m| m.name == f.sig.ident)
        {
            instrument(f, &meta, m, &tracing);
        }
    }

    for m in &meta.methods {
        if meta.transport == Transport::Tonic && m.server_streaming {
            let stream = stream_type(m);
            if !provided_types.contains(&stream.to_string()) {
                let output = &m.output;
                let tonic = quote!(#krate::__private::tonic);
                item.items.push(syn::parse_quote! {
                    type #stream = ::std::pin::Pin<Box<
                        dyn #tonic::codegen::tokio_stream::Stream<
                            Item = ::std::result::Result<#output, #tonic::Status>,
                        > + Send + 'static,
                    >>;
                });
            }
        }
        if !provided.contains(&m.name.to_string()) {
            item.items.push(syn::parse2(unimplemented(&meta, m))?);
        }
    }

    if meta.transport == Transport::Tonic
        && !item.attrs.iter().any(|a| {
            a.path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "async_trait")
        })
    {
        item.attrs
            .push(syn::parse_quote!(#[#krate::__private::tonic::async_trait]));
    }

    let registration = registration(&item, &meta, &options.register)?;
    Ok(quote! {
        #item
        #registration
    })
}

/// Name of the associated stream type of a server-streaming tonic method.
fn stream_type(m: &Method) -> syn::Ident {
    format_ident!("{}Stream", m.proto.value())
}

/// Wraps a user-written method body in a span naming the RPC.
fn instrument(f: &mut ImplItemFn, meta: &Meta, m: &Method, tracing: &TokenStream) {
    let service = &meta.service;
    let method = &m.proto;
    let body = &f.block;
    let span = quote! {
        let __ctrd_span = #tracing::info_span!("rpc", service = #service, method = #method);
    };
    f.block = if meta.transport.is_async() {
        syn::parse_quote!({
            #span
            #tracing::Instrument::instrument(async move #body, __ctrd_span).await
        })
    } else {
        syn::parse_quote!({
            #span
            let __ctrd_entered = __ctrd_span.enter();
            #body
        })
    };
}

/// A method answering "unimplemented" in the transport's own terms.
fn unimplemented(meta: &Meta, m: &Method) -> TokenStream {
    let krate = &meta.krate;
    let name = &m.name;
    let input = &m.input;
    let output = &m.output;
    let proto = &m.proto;
    let service = &meta.service;
    match meta.transport {
        Transport::Tonic => {
            let tonic = quote!(#krate::__private::tonic);
            let request = if m.client_streaming {
                quote!(#tonic::Request<#tonic::Streaming<#input>>)
            } else {
                quote!(#tonic::Request<#input>)
            };
            let response = if m.server_streaming {
                let stream = stream_type(m);
                quote!(Self::#stream)
            } else {
                quote!(#output)
            };
            quote! {
                async fn #name(&self, _request: #request)
                    -> ::std::result::Result<#tonic::Response<#response>, #tonic::Status> {
                    Err(#tonic::Status::unimplemented(
                        format!("/{}/{} is not implemented", #service, #proto),
                    ))
                }
            }
        }
        Transport::Ttrpc => {
            let ttrpc = quote!(#krate::__private::ttrpc);
            quote! {
                fn #name(&self, _ctx: &#krate::CallContext, _req: #input)
                    -> #ttrpc::Result<#output> {
                    Err(#krate::ttrpc_rt::unimplemented(#service, #proto))
                }
            }
        }
        Transport::TtrpcAsync => {
            let ttrpc = quote!(#krate::__private::ttrpc);
            quote! {
                async fn #name(&self, _ctx: &#ttrpc::r#async::TtrpcContext, _req: #input)
                    -> #ttrpc::Result<#output> {
                    Err(#krate::ttrpc_rt::unimplemented(#service, #proto))
                }
            }
        }
    }
}

/// An inherent method turning the implementer into what the transport's server registers.
fn registration(
    item: &syn::ItemImpl,
    meta: &Meta,
    name: &Option<syn::Ident>,
) -> syn::Result<TokenStream> {
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    let self_ty = &item.self_ty;
    let trait_name = item
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .map(|s| s.ident.to_string().to_snake_case())
        .ok_or_else(|| syn::Error::new_spanned(self_ty, "expected a trait impl"))?;
    let krate = &meta.krate;
    let module = &meta.module;
    let register = &meta.register;
    let service = meta.service.value();
    let method = match (name, meta.transport) {
        (Some(name), _) => name.clone(),
        (None, Transport::Tonic) => format_ident!("into_{}_server", trait_name),
        (None, _) => format_ident!("into_{}_service", trait_name),
    };
    let body = match meta.transport {
        Transport::Tonic => {
            let doc = format!("Wraps `self` as the tonic service of `{service}`.");
            quote! {
                #[doc = #doc]
                pub fn #method(self) -> #module::#register<Self> {
                    #module::#register::new(self)
                }
            }
        }
        Transport::Ttrpc => {
            let ttrpc = quote!(#krate::__private::ttrpc);
            let doc = format!("The methods of `{service}` for `ttrpc::Server::register_service`.");
            quote! {
                #[doc = #doc]
                pub fn #method(self) -> ::std::collections::HashMap<
                    String,
                    Box<dyn #ttrpc::MethodHandler + Send + Sync>,
                > {
                    #module::#register(::std::sync::Arc::new(self))
                }
            }
        }
        Transport::TtrpcAsync => {
            let ttrpc = quote!(#krate::__private::ttrpc);
            let doc =
                format!("The service `{service}` for `ttrpc::r#async::Server::register_service`.");
            quote! {
                #[doc = #doc]
                pub fn #method(self) -> ::std::collections::HashMap<
                    String,
                    #ttrpc::r#async::Service,
                > {
                    #module::#register(::std::sync::Arc::new(self))
                }
            }
        }
    };
    Ok(quote! {
        impl #impl_generics #self_ty #where_clause {
            #body
        }
    })
}
