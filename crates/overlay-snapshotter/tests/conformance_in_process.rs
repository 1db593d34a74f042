//! The conformance cases against our overlay snapshotter served in-process over gRPC.

mod common;

use common::{InProcess, conformance};

async fn case(name: &str) {
    let server = InProcess::start().await;
    conformance::run(&server.target, name).await;
    server.stop().await;
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                case(stringify!($name)).await;
            }
        )*

        #[test]
        fn every_case_is_listed() {
            let mut here = vec![$(stringify!($name)),*];
            let mut all = conformance::CASES.to_vec();
            here.sort();
            all.sort();
            assert_eq!(here, all);
        }
    };
}

cases!(
    basic_chain,
    file_changes_carry_across_layers,
    permissions_and_owners,
    labels_and_update,
    list_with_filters,
    usage_of_active_and_committed,
    bad_input_gets_the_right_code,
    commit_and_remove_twice,
    layers_128,
);
