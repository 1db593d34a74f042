//! The command line containerd gives a shim names its namespace and id, which become socket
//! addresses and paths: anything containerd's own identifier rule refuses is refused here, with
//! a message naming the flag and the reason. What `start` reads on stdin never fails it.

use ctrd_shim::{Error, Flags, StartInput};

fn parse(namespace: &str, id: &str) -> Result<Flags, Error> {
    Flags::parse(
        [
            "-namespace",
            namespace,
            "-id",
            id,
            "-address",
            "/run/c.sock",
            "start",
        ]
        .map(str::to_owned),
    )
}

#[test]
fn namespaces_and_ids_follow_containerds_identifier_rule() {
    let longest = "a".repeat(76);
    for ok in ["c1", "a.b", "a_b-c.d", longest.as_str()] {
        parse("default", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        parse(ok, "c1").unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let too_long = "a".repeat(77);
    for bad in [
        "../c1",
        "a/b",
        "..",
        "a..b",
        "-a",
        "a-",
        "a b",
        "a\0b",
        "a\nb",
        "é",
        too_long.as_str(),
    ] {
        match parse("default", bad) {
            Err(Error::InvalidIdentifier { what: "id", .. }) => {}
            other => panic!("id {bad:?}: {other:?}"),
        }
        match parse(bad, "c1") {
            Err(
                e @ Error::InvalidIdentifier {
                    what: "namespace", ..
                },
            ) => {
                assert!(e.to_string().starts_with("namespace "), "{e}");
            }
            other => panic!("namespace {bad:?}: {other:?}"),
        }
    }
}

#[test]
fn start_input_of_any_shape_is_kept_not_fatal() {
    let flags = parse("default", "c1").expect("flags");
    for input in [&b""[..], b"\xff\xff\xff", b"{\"json\":true}", &[0x0a; 4096]] {
        match StartInput::parse(input, &flags) {
            StartInput::Legacy { options, .. } => assert!(options.is_none(), "{input:?}"),
            StartInput::Bootstrap(params) => panic!("{input:?} read as {params:?}"),
        }
    }
}
