// A path that does not go through a `<service>_server`, `_ttrpc` or `_ttrpc_async` module.
struct Server;

#[ctrd_macros::service(ctrd_api::containerd::services::version::v1::VersionResponse)]
impl Clone for Server {
    fn clone(&self) -> Self {
        Server
    }
}

fn main() {}
