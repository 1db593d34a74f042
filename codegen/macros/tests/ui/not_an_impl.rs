// Only an impl block can be completed.
#[ctrd_macros::service(ctrd_api::containerd::task::v3::task_ttrpc_async::Task)]
fn connect() {}

fn main() {}
