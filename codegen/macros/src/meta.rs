//! Parsing the description a generated service macro hands to `__complete_service!`.

use proc_macro2::{Ident, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream};
use syn::{LitBool, LitStr, Token, braced, bracketed};

/// How the service is served; mirrors the generator's transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tonic,
    Ttrpc,
    TtrpcAsync,
}

impl Transport {
    /// The transport a generated trait module's name stands for.
    pub fn from_module(module: &str) -> Option<Transport> {
        if module.ends_with("_ttrpc_async") {
            Some(Transport::TtrpcAsync)
        } else if module.ends_with("_ttrpc") {
            Some(Transport::Ttrpc)
        } else if module.ends_with("_server") {
            Some(Transport::Tonic)
        } else {
            None
        }
    }

    /// The suffix of the generated macro's name.
    pub fn keyword(self) -> &'static str {
        match self {
            Transport::Tonic => "tonic",
            Transport::Ttrpc => "ttrpc",
            Transport::TtrpcAsync => "ttrpc_async",
        }
    }

    /// Whether handlers are `async fn`.
    pub fn is_async(self) -> bool {
        self != Transport::Ttrpc
    }
}

/// One RPC.
pub struct Method {
    pub name: Ident,
    pub proto: LitStr,
    pub input: TokenStream,
    pub output: TokenStream,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

/// The service description.
pub struct Meta {
    /// Path of the generated crate (`$crate` as the generated macro saw it).
    pub krate: TokenStream,
    pub transport: Transport,
    pub service: LitStr,
    pub module: TokenStream,
    pub register: Ident,
    pub methods: Vec<Method>,
}

/// Everything `__complete_service!` receives.
pub struct Input {
    pub options: Options,
    pub item: syn::ItemImpl,
    pub meta: Meta,
}

/// What the user set in `#[service(Trait, ...)]`.
#[derive(Default)]
pub struct Options {
    /// Name of the generated registration method.
    pub register: Option<Ident>,
}

/// Tokens up to the next top-level comma (which is consumed).
fn until_comma(input: ParseStream) -> syn::Result<TokenStream> {
    let mut out = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        let tt: TokenTree = input.parse()?;
        out.extend([tt]);
    }
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
    }
    Ok(out)
}

/// `key =` with `key` checked.
fn key(input: ParseStream, expected: &str) -> syn::Result<()> {
    let ident: Ident = input.call(syn::ext::IdentExt::parse_any)?;
    if ident != expected {
        return Err(syn::Error::new(
            ident.span(),
            format!("expected `{expected}`"),
        ));
    }
    input.parse::<Token![=]>()?;
    Ok(())
}

/// The content of a `{ ... }` group.
fn group(input: ParseStream) -> syn::Result<TokenStream> {
    let content;
    braced!(content in input);
    content.parse()
}

fn comma(input: ParseStream) -> syn::Result<()> {
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

impl Parse for Options {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut options = Options::default();
        while !input.is_empty() {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            match name.to_string().as_str() {
                "register" => options.register = Some(input.parse()?),
                other => {
                    return Err(syn::Error::new(
                        name.span(),
                        format!("unknown option `{other}`; the only option is `register = name`"),
                    ));
                }
            }
            comma(input)?;
        }
        Ok(options)
    }
}

impl Parse for Method {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let content;
        braced!(content in input);
        key(&content, "name")?;
        let name = content.parse()?;
        comma(&content)?;
        key(&content, "proto")?;
        let proto = content.parse()?;
        comma(&content)?;
        key(&content, "input")?;
        let input_ty = group(&content)?;
        comma(&content)?;
        key(&content, "output")?;
        let output = group(&content)?;
        comma(&content)?;
        key(&content, "client_streaming")?;
        let client_streaming: LitBool = content.parse()?;
        comma(&content)?;
        key(&content, "server_streaming")?;
        let server_streaming: LitBool = content.parse()?;
        comma(&content)?;
        Ok(Method {
            name,
            proto,
            input: input_ty,
            output,
            client_streaming: client_streaming.value,
            server_streaming: server_streaming.value,
        })
    }
}

impl Parse for Meta {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        key(input, "krate")?;
        let krate = until_comma(input)?;
        key(input, "transport")?;
        let transport: Ident = input.parse()?;
        let transport = match transport.to_string().as_str() {
            "tonic" => Transport::Tonic,
            "ttrpc" => Transport::Ttrpc,
            "ttrpc_async" => Transport::TtrpcAsync,
            other => {
                return Err(syn::Error::new(
                    transport.span(),
                    format!("unknown transport `{other}`"),
                ));
            }
        };
        comma(input)?;
        key(input, "service")?;
        let service = input.parse()?;
        comma(input)?;
        key(input, "module")?;
        let module = until_comma(input)?;
        key(input, "register")?;
        let register = input.parse()?;
        comma(input)?;
        key(input, "methods")?;
        let list;
        bracketed!(list in input);
        let mut methods = Vec::new();
        while !list.is_empty() {
            methods.push(list.parse()?);
            comma(&list)?;
        }
        comma(input)?;
        Ok(Meta {
            krate,
            transport,
            service,
            module,
            register,
            methods,
        })
    }
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        key(input, "options")?;
        let options = syn::parse2(group(input)?)?;
        comma(input)?;
        key(input, "item")?;
        let item = syn::parse2(group(input)?)?;
        comma(input)?;
        key(input, "meta")?;
        let meta = syn::parse2(group(input)?)?;
        Ok(Input {
            options,
            item,
            meta,
        })
    }
}
