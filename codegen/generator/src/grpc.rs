//! gRPC clients and servers, emitted by tonic and gated behind the `grpc` feature.

use proc_macro2::TokenStream;
use prost_build::{Service, ServiceGenerator};
use quote::ToTokens;

use crate::Error;
use crate::scaffold::{self, Transport};

/// Runs tonic's generator for one service, gates its output on the `grpc` feature and adds the
/// scaffolding metadata to its server module.
pub fn generate(tonic: &mut dyn ServiceGenerator, service: Service) -> Result<TokenStream, Error> {
    let server_module = Transport::Tonic.module_name(&service);
    let meta = scaffold::meta_macro(&service, Transport::Tonic);
    let mut code = String::new();
    tonic.generate(service, &mut code);
    let mut file = syn::parse_file(&code).map_err(|error| Error::Parse {
        file: "tonic output".into(),
        error,
    })?;
    let gate: syn::Attribute = syn::parse_quote!(#[cfg(feature = "grpc")]);
    let meta_items: syn::File = syn::parse2(meta).map_err(|error| Error::Parse {
        file: "scaffolding metadata".into(),
        error,
    })?;
    for item in &mut file.items {
        if let syn::Item::Mod(module) = item {
            module.attrs.push(gate.clone());
            if module.ident == server_module
                && let Some((_, items)) = &mut module.content
            {
                items.extend(meta_items.items.iter().cloned());
            }
        }
    }
    Ok(file.into_token_stream())
}
