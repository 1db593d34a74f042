// A method the service does not have, such as a misspelt one, is named with the service.
struct Shim;

#[ctrd_macros::service(ctrd_api::containerd::task::v3::task_ttrpc_async::Task)]
impl ctrd_api::containerd::task::v3::task_ttrpc_async::Task for Shim {
    async fn conect(&self) {}
}

fn main() {}
