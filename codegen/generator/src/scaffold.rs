//! Service metadata for the scaffolding macro (`ctrd_macros::service`).
//!
//! A proc macro cannot look inside the trait it is asked to complete, so every generated service
//! has a hidden exported macro (named by [`macro_name`]) that hands the service's description to a
//! callback: `krate::__ctrd_svc_..! { ::ctrd_macros::__complete_service! { ... } }` expands to a
//! call of the callback with the caller's tokens followed by `meta = { ... }`.

use proc_macro2::TokenStream;
use prost_build::Service;

use crate::names;

/// How a service is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// gRPC through tonic.
    Tonic,
    /// ttrpc, synchronous server and client.
    Ttrpc,
    /// ttrpc, asynchronous server and client.
    TtrpcAsync,
}

impl Transport {
    /// Name of the module that holds the service trait.
    pub fn module_name(self, service: &Service) -> String {
        let base = names::snake(&service.proto_name);
        match self {
            Transport::Tonic => format!("{base}_server"),
            Transport::Ttrpc => format!("{base}_ttrpc"),
            Transport::TtrpcAsync => format!("{base}_ttrpc_async"),
        }
    }

    fn keyword(self) -> &'static str {
        match self {
            Transport::Tonic => "tonic",
            Transport::Ttrpc => "ttrpc",
            Transport::TtrpcAsync => "ttrpc_async",
        }
    }
}

/// Absolute path (from `$crate`) of a type that prost names relative to `package`'s module.
fn absolute_type(package: &str, relative: &str) -> String {
    if relative == "()" {
        return "()".to_owned();
    }
    if let Some(rest) = relative.strip_prefix("::prost_types::") {
        return format!("$crate::__private::prost_types::{rest}");
    }
    if relative.starts_with("::") {
        return relative.to_owned();
    }
    let mut path = names::package_path(package);
    for segment in relative.split("::") {
        if segment == "super" {
            path.pop();
        } else {
            path.push(segment.to_owned());
        }
    }
    format!("$crate::{}", path.join("::"))
}

/// Name of the hidden macro describing a service.
///
/// `ctrd_macros::service` computes the same name from the trait's path
/// (`krate::a::b::v1::name_server::Name` gives `krate::__ctrd_svc_a_b_v1_name_tonic`), since a
/// crate may not re-export its own exported macros under a module path.
pub fn macro_name(package: &str, service: &str, transport: Transport) -> String {
    format!(
        "__ctrd_svc_{}_{}_{}",
        names::package_path(package).join("_"),
        service.to_lowercase(),
        transport.keyword()
    )
}

/// The hidden `macro_rules!` describing `service`.
pub fn meta_macro(service: &Service, transport: Transport) -> TokenStream {
    let full_name = format!("{}.{}", service.package, service.proto_name);
    let macro_name = macro_name(&service.package, &service.name, transport);
    let module = {
        let mut path = names::package_path(&service.package);
        path.push(transport.module_name(service));
        format!("$crate::{}", path.join("::"))
    };
    let register = match transport {
        Transport::Tonic => format!("{}Server", service.name),
        Transport::Ttrpc | Transport::TtrpcAsync => {
            format!("create_{}", names::snake(&service.proto_name))
        }
    };
    let methods: String = service
        .methods
        .iter()
        .map(|m| {
            format!(
                "{{ name = {}, proto = \"{}\", input = {{ {} }}, output = {{ {} }}, \
                 client_streaming = {}, server_streaming = {} }},",
                m.name,
                m.proto_name,
                absolute_type(&service.package, &m.input_type),
                absolute_type(&service.package, &m.output_type),
                m.client_streaming,
                m.server_streaming,
            )
        })
        .collect();
    let text = format!(
        r#"
        #[doc(hidden)]
        #[macro_export]
        macro_rules! {macro_name} {{
            ($(::)? $($callback:ident)::+ ! {{ $($input:tt)* }}) => {{
                $($callback)::+ ! {{
                    $($input)*
                    meta = {{
                        krate = $crate,
                        transport = {transport},
                        service = "{full_name}",
                        module = {module},
                        register = {register},
                        methods = [ {methods} ],
                    }}
                }}
            }};
        }}
        "#,
        transport = transport.keyword(),
    );
    text.parse()
        .unwrap_or_else(|e| syn::Error::new(proc_macro2::Span::call_site(), e).to_compile_error())
}

#[cfg(test)]
mod tests {
    use super::absolute_type;

    #[test]
    fn relative_types_become_absolute() {
        assert_eq!(absolute_type("containerd.task.v2", "()"), "()");
        assert_eq!(
            absolute_type("containerd.task.v2", "StateRequest"),
            "$crate::containerd::task::v2::StateRequest"
        );
        assert_eq!(
            absolute_type(
                "containerd.services.tasks.v1",
                "super::super::super::types::Mount"
            ),
            "$crate::containerd::types::Mount"
        );
        assert_eq!(
            absolute_type("containerd.task.v2", "::prost_types::Any"),
            "$crate::__private::prost_types::Any"
        );
    }
}
