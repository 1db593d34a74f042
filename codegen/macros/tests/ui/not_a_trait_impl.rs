// The macro completes an impl of a service trait, not an inherent impl.
struct Shim;

#[ctrd_macros::service(ctrd_api::containerd::task::v3::task_ttrpc_async::Task)]
impl Shim {
    fn helper(&self) {}
}

fn main() {}
