//! `ctrd_snapshots::conformance`'s cases against our overlay snapshotter served in-process
//! over gRPC, one test each.

mod common;

use common::InProcess;
use ctrd_snapshots::conformance;

async fn case(name: &str) {
    let server = InProcess::start().await;
    let result = conformance::run(&server.target, common::case(name)).await;
    server.stop().await;
    if let Err(e) = result {
        panic!("{}", e.full_message());
    }
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
            let mut all: Vec<&str> = conformance::CASES.iter().map(|c| c.name).collect();
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
    commit_onto_a_parent,
    layers_128,
);
