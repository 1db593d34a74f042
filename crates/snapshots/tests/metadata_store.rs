//! The metadata store on its own: keys, ids, parents, labels, commit, remove, walk, reopen.

use ctrd_snapshots::{Error, Filter, Info, Kind, Labels, MetaStore, Usage};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

fn open() -> (tempfile::TempDir, MetaStore) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let store = MetaStore::open(&dir.path().join("metadata.redb")).expect("open store");
    (dir, store)
}

fn prepare(store: &MetaStore, key: &str, parent: Option<&str>) -> u64 {
    store
        .create(Kind::Active, key, parent, Labels::new(), |_| Ok(()))
        .expect("create")
        .0
        .id
}

fn commit(store: &MetaStore, key: &str, name: &str) {
    let id = store.get(key).expect("get").id;
    store
        .commit(key, name, id, None, Labels::new(), Usage::default())
        .expect("commit");
}

#[test]
fn chains_keep_ids_and_parents_nearest_first() {
    let (_dir, store) = open();
    let a = prepare(&store, "a-active", None);
    commit(&store, "a-active", "a");
    let b = prepare(&store, "b-active", Some("a"));
    commit(&store, "b-active", "b");
    let c = prepare(&store, "c", Some("b"));
    let snapshot = store.get("c").expect("get");
    assert_eq!(snapshot.id, c);
    assert_eq!(snapshot.kind, Kind::Active);
    assert_eq!(snapshot.parent_ids, vec![b, a]);
    assert_eq!(store.get("a").expect("get a").id, a, "commit keeps the id");
    let info = store.stat("b").expect("stat");
    assert_eq!(info.kind, Kind::Committed);
    assert_eq!(info.parent.as_deref(), Some("a"));
    assert!(matches!(
        store.stat("a-active"),
        Err(Error::NotFound { .. })
    ));
    let ids = store.ids().expect("ids");
    assert_eq!(ids.get(&a).map(String::as_str), Some("a"));
    assert_eq!(ids.get(&c).map(String::as_str), Some("c"));
}

#[test]
fn bad_parents_existing_keys_and_failed_hooks_record_nothing() {
    let (_dir, store) = open();
    prepare(&store, "active", None);
    let err = store
        .create(
            Kind::Active,
            "x",
            Some("missing"),
            Labels::new(),
            |_| Ok(()),
        )
        .err();
    assert!(matches!(err, Some(Error::NotFound { .. })), "{err:?}");
    let err = store
        .create(Kind::View, "x", Some("active"), Labels::new(), |_| Ok(()))
        .err();
    assert!(
        matches!(err, Some(Error::ParentNotCommitted { .. })),
        "{err:?}"
    );
    let err = store
        .create(Kind::Active, "active", None, Labels::new(), |_| Ok(()))
        .err();
    assert!(matches!(err, Some(Error::AlreadyExists { .. })), "{err:?}");
    let err = store
        .create(Kind::Active, "hooked", None, Labels::new(), |_| {
            Err::<(), _>(Error::Unsupported {
                what: "test".into(),
            })
        })
        .err();
    assert!(err.is_some());
    assert!(matches!(store.stat("hooked"), Err(Error::NotFound { .. })));
    assert!(matches!(
        store.create(Kind::Active, "", None, Labels::new(), |_| Ok(())),
        Err(Error::InvalidKey { .. })
    ));
    assert_eq!(store.ids().expect("ids").len(), 1);
}

#[test]
fn remove_refuses_parents_with_children_and_commit_needs_active() {
    let (_dir, store) = open();
    prepare(&store, "base-active", None);
    commit(&store, "base-active", "base");
    prepare(&store, "child", Some("base"));
    assert!(matches!(
        store.remove("base"),
        Err(Error::HasChildren { children: 1, .. })
    ));
    let id = store.get("base").expect("get").id;
    assert!(matches!(
        store.commit("base", "again", id, None, Labels::new(), Usage::default()),
        Err(Error::WrongKind { .. })
    ));
    let child = store.get("child").expect("get").id;
    assert!(matches!(
        store.commit(
            "child",
            "base",
            child,
            None,
            Labels::new(),
            Usage::default()
        ),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(store.remove("child").expect("remove child").0, child);
    store.remove("base").expect("remove base once childless");
    assert!(store.ids().expect("ids").is_empty());
    assert!(matches!(store.remove("base"), Err(Error::NotFound { .. })));
}

#[test]
fn commit_rebases_inherits_snapshot_labels_and_stores_usage() {
    let (_dir, store) = open();
    prepare(&store, "a-active", None);
    commit(&store, "a-active", "a");
    prepare(&store, "b-active", None);
    commit(&store, "b-active", "b");
    // Prepared without a parent (containerd 2.2+'s parallel unpack), committed onto `b`.
    store
        .create(
            Kind::Active,
            "c-active",
            None,
            labels(&[("containerd.io/snapshot/remote", "yes"), ("plain", "x")]),
            |_| Ok(()),
        )
        .expect("create");
    let id = store.get("c-active").expect("get").id;
    let usage = Usage {
        size: 4096,
        inodes: 3,
    };
    store
        .commit(
            "c-active",
            "c",
            id,
            Some("b"),
            labels(&[("new", "1")]),
            usage,
        )
        .expect("commit with rebase");
    let info = store.stat("c").expect("stat");
    assert_eq!(info.parent.as_deref(), Some("b"));
    assert_eq!(
        info.labels,
        labels(&[("containerd.io/snapshot/remote", "yes"), ("new", "1")])
    );
    assert_eq!(store.usage("c").expect("usage").1, Some(usage));
    assert!(matches!(store.remove("b"), Err(Error::HasChildren { .. })));

    // Prepared on `a`: committing onto `b` is refused (containerd's rule), onto `a` is fine.
    prepare(&store, "d-active", Some("a"));
    let id = store.get("d-active").expect("get").id;
    assert!(matches!(
        store.commit("d-active", "d", id, Some("b"), Labels::new(), usage),
        Err(Error::ParentChanged { .. })
    ));
    assert_eq!(
        store
            .stat("d-active")
            .expect("still active")
            .parent
            .as_deref(),
        Some("a")
    );
    store
        .commit("d-active", "d", id, Some("a"), Labels::new(), usage)
        .expect("commit onto the same parent");
    assert_eq!(store.stat("d").expect("stat").parent.as_deref(), Some("a"));
    store.remove("d").expect("remove d");
    store.remove("a").expect("a is childless again");
}

#[test]
fn update_replaces_all_labels_or_single_paths_and_checks_sizes() {
    let (_dir, store) = open();
    store
        .create(
            Kind::Active,
            "s",
            None,
            labels(&[("a", "1"), ("b", "2")]),
            |_| Ok(()),
        )
        .expect("create");
    let mut info: Info = store.stat("s").expect("stat");
    info.labels = labels(&[("b", "20"), ("c", "3")]);
    let updated = store
        .update(info.clone(), &["labels.b".into(), "labels.a".into()])
        .expect("update paths");
    assert_eq!(updated.labels, labels(&[("b", "20")]));
    let updated = store.update(info.clone(), &[]).expect("update all");
    assert_eq!(updated.labels, labels(&[("b", "20"), ("c", "3")]));
    assert!(updated.updated_at >= updated.created_at);
    assert!(matches!(
        store.update(info.clone(), &["parent".into()]),
        Err(Error::BadFieldPath { .. })
    ));
    info.labels = labels(&[("big", &"x".repeat(4096))]);
    let err = store.update(info, &[]).err();
    assert!(matches!(err, Some(Error::LabelTooLong { .. })), "{err:?}");
    assert_eq!(
        store.stat("s").expect("stat").labels,
        labels(&[("b", "20"), ("c", "3")]),
        "a refused update changes nothing"
    );
}

#[test]
fn walk_filters_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("metadata.redb");
    {
        let store = MetaStore::open(&path).expect("open");
        prepare(&store, "base-active", None);
        commit(&store, "base-active", "base");
        prepare(&store, "one", Some("base"));
        store
            .create(
                Kind::View,
                "view",
                Some("base"),
                labels(&[("k", "v")]),
                |_| Ok(()),
            )
            .expect("view");
    }
    let store = MetaStore::open(&path).expect("reopen");
    let names = |filters: &[&str]| {
        let filter = Filter::parse_any(filters).expect("filter");
        let mut names = Vec::new();
        store
            .walk(&filter, &mut |info| {
                names.push(info.name);
                Ok(())
            })
            .expect("walk");
        names
    };
    assert_eq!(names(&[]), ["base", "one", "view"]);
    assert_eq!(names(&["parent==base"]), ["one", "view"]);
    assert_eq!(names(&["kind==view", "name==base"]), ["base", "view"]);
    assert_eq!(names(&["labels.k==v"]), ["view"]);
    assert_eq!(names(&["name~=\"^(b|o)\""]), ["base", "one"]);
    assert_eq!(
        prepare(&store, "after", None),
        4,
        "ids go on after a reopen"
    );
}
