// A misspelt option names the options there are.
struct Server;

#[ctrd_macros::service(
    ctrd_api::containerd::services::version::v1::version_server::Version,
    regsiter = into_server
)]
impl ctrd_api::containerd::services::version::v1::version_server::Version for Server {}

fn main() {}
