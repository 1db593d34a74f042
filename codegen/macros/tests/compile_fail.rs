//! The scaffolding macro's error messages, as a user meets them: each case in `tests/ui` must
//! fail to compile with the message recorded next to it. After changing a message on purpose,
//! rerun with `TRYBUILD=overwrite` and review the new `.stderr` files.

#[test]
fn misuse_gets_a_clear_error() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
