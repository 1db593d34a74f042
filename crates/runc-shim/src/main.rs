//! `containerd-shim-runc-v2`: the runc shim binary.

fn main() -> std::process::ExitCode {
    ctrd_shim::run::<ctrd_runc_shim::RuncShim>()
}
