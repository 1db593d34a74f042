//! Packing into `Any` the way containerd names types, and unpacking with the checks it needs.

use ctrd_api_rt::{AnyError, TypeUrl};

#[derive(Clone, PartialEq, prost::Message)]
struct Ping {
    #[prost(string, tag = "1")]
    text: String,
}

impl TypeUrl for Ping {
    const TYPE_URL: &'static str = "example.Ping";
}

#[derive(Clone, PartialEq, prost::Message)]
struct Pong {
    #[prost(uint32, tag = "1")]
    count: u32,
}

impl TypeUrl for Pong {
    const TYPE_URL: &'static str = "example.Pong";
}

#[test]
fn unpacks_with_or_without_a_url_prefix() {
    let mut any = Ping { text: "hi".into() }.to_any();
    assert_eq!(any.type_url, "example.Ping", "containerd writes no prefix");
    any.type_url = "types.googleapis.com/example.Ping".into();
    let ping = Ping::from_any(&any).expect("a prefix ending in / is accepted");
    assert_eq!(ping.text, "hi");
}

#[test]
fn another_type_is_refused_by_name() {
    let any = Pong { count: 3 }.to_any();
    let err = Ping::from_any(&any).expect_err("type mismatch");
    assert!(matches!(err, AnyError::TypeMismatch { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "expected an Any holding example.Ping, found example.Pong"
    );
}

#[test]
fn a_malformed_payload_is_a_decode_error() {
    let any = prost_types::Any {
        type_url: "example.Pong".into(),
        value: vec![0x08],
    };
    let err = Pong::from_any(&any).expect_err("truncated varint");
    assert!(matches!(err, AnyError::Decode { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("malformed example.Pong in Any: "),
        "the decoder's error is in the message: {err}"
    );
}
