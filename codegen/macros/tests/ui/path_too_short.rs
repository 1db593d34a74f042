// The trait must be named by its full path, so the macro can find the service's description.
struct Server;

#[ctrd_macros::service(Version)]
impl ctrd_api::containerd::services::version::v1::version_server::Version for Server {}

fn main() {}
