//! The store against a real PostgreSQL: migrations, RLS, the audit trail, atomic refreshes,
//! pagination under concurrent writes.

use std::collections::HashMap;

use crate::common::*;
use curio::{
    catalog::{AssetKind, apply, diff},
    store::{self, AssetQuery, NamespaceScope},
};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

#[tokio::test]
async fn migrations_run_twice_are_a_no_op() {
    let url = empty_postgres().await;
    assert_eq!(store::migrate(&url).await.unwrap(), 9);
    let store = store::connect(&url).await.unwrap();
    let tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'";
    let before = count(&store, tables).await;
    assert_eq!(store::migrate(&url).await.unwrap(), 0);
    assert_eq!(count(&store, tables).await, before);
    assert_eq!(
        count(&store, "SELECT count(*) FROM seaql_migrations").await,
        9
    );
}

#[tokio::test]
async fn five_concurrent_migrate_processes_migrate_once() {
    let url = empty_postgres().await;
    let children: Vec<_> = (0..5)
        .map(|_| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_curio"))
                .args(["migrate", "--database-url", &url])
                .env("RUST_LOG", "warn")
                .kill_on_drop(true)
                .spawn()
                .expect("spawn curio migrate")
        })
        .collect();
    for child in children {
        let status = child.wait_with_output().await.expect("wait").status;
        assert!(status.success(), "curio migrate failed: {status}");
    }
    let store = store::connect(&url).await.unwrap();
    let rows = store
        .connection()
        .query_all_raw(Statement::from_string(
            store.backend(),
            "SELECT version, count(*) FROM seaql_migrations GROUP BY version ORDER BY version",
        ))
        .await
        .unwrap();
    let versions: Vec<(String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        vec![
            ("m20261122_000001_initial".to_string(), 1),
            ("m20261122_000002_postgres_security".to_string(), 1),
            ("m20261202_000003_asset_details".to_string(), 1),
            ("m20261202_000004_search_index".to_string(), 1),
            ("m20261202_000005_catalog_revisions".to_string(), 1),
            ("m20261202_000006_change_feed".to_string(), 1),
            ("m20261203_000007_read_path".to_string(), 1),
            ("m20261203_000008_planner_statistics".to_string(), 1),
            ("m20261204_000009_description_terms".to_string(), 1)
        ]
    );
}

#[tokio::test]
async fn row_level_security_blocks_a_cross_namespace_raw_select() {
    let (store, _) = postgres_store().await;
    let (a, b) = (ns("team-a"), ns("team-b"));
    refresh(&store, &a, "src", models("a", 3)).await;
    refresh(&store, &b, "src", models("b", 4)).await;
    // team-b deletes one: a tombstone in the change feed, as tenant-scoped as the rows.
    refresh(&store, &b, "src", models("b", 3)).await;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM asset_tombstones WHERE namespace = 'team-b'"
        )
        .await,
        1
    );

    let txn = store
        .begin_scoped(&NamespaceScope::single(a.clone()))
        .await
        .unwrap();
    let rows = txn
        .query_all_raw(Statement::from_string(
            store.backend(),
            "SELECT namespace FROM assets",
        ))
        .await
        .unwrap();
    let seen: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index(0).unwrap())
        .collect();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|n| n == "team-a"), "{seen:?}");
    for table in [
        "assets",
        "audit_events",
        "catalog_sources",
        "refresh_jobs",
        "asset_tombstones",
    ] {
        let row = txn
            .query_one_raw(Statement::from_string(
                store.backend(),
                format!("SELECT count(*) FROM {table} WHERE namespace = 'team-b'"),
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.try_get_by_index::<i64>(0).unwrap(),
            0,
            "{table} leaked team-b"
        );
    }
    // The scoped path cannot write either.
    let write = txn
        .execute_unprepared("DELETE FROM assets WHERE namespace = 'team-a'")
        .await;
    assert!(write.is_err(), "a scoped transaction wrote");
    drop(txn);

    // An unset namespace setting sees nothing: fail closed.
    let txn = store.connection().begin().await.unwrap();
    txn.execute_unprepared("SET LOCAL ROLE curio_reader")
        .await
        .unwrap();
    let row = txn
        .query_one_raw(Statement::from_string(
            store.backend(),
            "SELECT count(*) FROM assets",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 0);
    drop(txn);

    // Both namespaces in scope: both visible.
    let both = NamespaceScope::new([a, b]).unwrap();
    let page = store
        .list_assets(&both, &AssetQuery::default(), Default::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 6);
}

#[tokio::test]
async fn audit_events_refuse_update_delete_and_truncate_but_retention_deletes() {
    let (store, _) = postgres_store().await;
    let a = ns("team-a");
    let mut old = audit(&a, "create", "old");
    old.occurred_at = chrono::Utc::now() - chrono::Duration::days(100);
    let new = audit(&a, "create", "new");
    store.record_audit_events(&[old, new]).await.unwrap();

    for sql in [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let err = store
            .connection()
            .execute_unprepared(sql)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(count(&store, "SELECT count(*) FROM audit_events").await, 2);

    let cutoff = chrono::Utc::now() - chrono::Duration::days(90);
    assert_eq!(
        store.purge_audit_events_before(cutoff, 100).await.unwrap(),
        1
    );
    assert_eq!(
        store.purge_audit_events_before(cutoff, 100).await.unwrap(),
        0
    );
    let left = store
        .list_audit_events(&NamespaceScope::single(a), &Default::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].object_name, "new");
    // The retention setting does not outlive its transaction.
    assert!(
        store
            .connection()
            .execute_unprepared("DELETE FROM audit_events")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_failure_in_the_middle_of_apply_refresh_leaves_nothing_behind() {
    let (store, _) = postgres_store().await;
    let a = ns("team-a");
    // A real failure in the last statement of the transaction: after the asset upserts.
    store
        .connection()
        .execute_unprepared(
            "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'injected failure'; END $$;
             CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events
               FOR EACH ROW WHEN (NEW.actor = 'inject-failure') EXECUTE FUNCTION fail_audit();",
        )
        .await
        .unwrap();
    let records = models("m", 5000);
    let d = diff(&HashMap::new(), records);
    let mut events: Vec<_> = d
        .added
        .iter()
        .map(|r| audit(&a, "create", r.name()))
        .collect();
    events[4000].actor = "inject-failure".into();
    let err = store
        .apply_refresh(&a, "src", &d, &events)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(count(&store, "SELECT count(*) FROM assets").await, 0);
    assert_eq!(count(&store, "SELECT count(*) FROM audit_events").await, 0);
}

#[tokio::test]
async fn refreshes_converge_on_the_desired_set_and_unchanged_writes_nothing() {
    let (store, _) = postgres_store().await;
    let a = ns("team-a");
    let first = models("m", 50);
    let out = refresh(&store, &a, "src", first.clone()).await;
    assert_eq!((out.added, out.audit_events), (50, 50));

    let updated_at = "SELECT max(updated_at)::text FROM assets";
    let stamp = |s: &curio::store::Store| {
        let s = s.clone();
        async move {
            let row = s
                .connection()
                .query_one_raw(Statement::from_string(s.backend(), updated_at))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<String>(0).unwrap()
        }
    };
    let before = stamp(&store).await;
    let out = refresh(&store, &a, "src", first.clone()).await;
    assert_eq!((out.unchanged, out.audit_events), (50, 0));
    assert_eq!(stamp(&store).await, before, "an unchanged refresh wrote");

    // Remove 10, change 5, add 7.
    let mut second: Vec<_> = first[10..].to_vec();
    for r in second.iter_mut().take(5) {
        *r = r.clone().with_tags(["changed".to_string()]);
    }
    second.extend(models("n", 7));
    let out = refresh(&store, &a, "src", second.clone()).await;
    assert_eq!(
        (out.added, out.updated, out.removed, out.unchanged),
        (7, 5, 10, 35)
    );

    let stored = store.source_digests(&a, "src").await.unwrap();
    let expected = apply(&diff(&HashMap::new(), second.clone()), vec![]);
    assert_eq!(stored.len(), expected.len());
    for r in &expected {
        assert_eq!(stored.get(&r.key()).map(String::as_str), Some(r.digest()));
    }
    // Another source in the same namespace is untouched by this one's refreshes.
    refresh(&store, &a, "other", models("m", 3)).await;
    refresh(&store, &a, "src", vec![]).await;
    assert_eq!(count(&store, "SELECT count(*) FROM assets").await, 3);
}

#[tokio::test]
async fn audit_rows_with_the_same_idempotency_key_are_written_once() {
    let (store, _) = postgres_store().await;
    let a = ns("team-a");
    let mut event = audit(&a, "update", "job-1");
    event.idempotency_key = Some("job-uid/1/phase-Succeeded".into());
    assert_eq!(
        store.record_audit_events(&[event.clone()]).await.unwrap(),
        1
    );
    assert_eq!(store.record_audit_events(&[event]).await.unwrap(), 0);
    assert_eq!(count(&store, "SELECT count(*) FROM audit_events").await, 1);
}

#[tokio::test]
async fn apply_refresh_refuses_audit_events_for_another_namespace() {
    let (store, _) = postgres_store().await;
    let (a, b) = (ns("team-a"), ns("team-b"));
    let d = diff(&HashMap::new(), models("m", 1));
    let err = store
        .apply_refresh(&a, "src", &d, &[audit(&b, "create", "m")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, store::StoreError::NamespaceMismatch { .. }),
        "{err}"
    );
    assert_eq!(count(&store, "SELECT count(*) FROM assets").await, 0);
}

#[tokio::test]
async fn pagination_returns_every_preexisting_row_once_under_concurrent_inserts() {
    let (store, _) = postgres_store().await;
    let a = ns("team-a");
    let mut initial = models("m", 7000);
    initial.extend((0..3000).map(|i| record(AssetKind::Agent, &format!("agent-{i:05}"), "1")));
    refresh(&store, &a, "src", initial).await;
    let preexisting: Vec<i64> = {
        let rows = store
            .connection()
            .query_all_raw(Statement::from_string(
                store.backend(),
                "SELECT id FROM assets",
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.try_get_by_index(0).unwrap())
            .collect()
    };
    assert_eq!(preexisting.len(), 10_000);

    // A writer interleaves new rows all over the key space while the reader pages.
    let writer_store = store.clone();
    let writer_ns = a.clone();
    let writer = tokio::spawn(async move {
        for round in 0..40 {
            let batch: Vec<_> = (0..50)
                .map(|i| {
                    let kind = if i % 2 == 0 {
                        AssetKind::Model
                    } else {
                        AssetKind::Agent
                    };
                    record(
                        kind,
                        &format!(
                            "{}-{:06}x{round}",
                            if i % 2 == 0 { "m" } else { "agent" },
                            i * 140
                        ),
                        "1",
                    )
                })
                .collect();
            let d = diff(&HashMap::new(), batch);
            writer_store
                .apply_refresh(&writer_ns, &format!("writer-{round}"), &d, &[])
                .await
                .unwrap();
            tokio::task::yield_now().await;
        }
    });

    let scope = NamespaceScope::single(a);
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_assets(
                &scope,
                &AssetQuery::default(),
                Default::default(),
                cursor.as_ref(),
                97,
            )
            .await
            .unwrap();
        for item in &page.items {
            *seen.entry(item.id).or_default() += 1;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    writer.await.unwrap();
    for id in &preexisting {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "row {id} seen {:?} times",
            seen.get(id)
        );
    }
    assert!(seen.values().all(|n| *n == 1), "a row appeared twice");
}

/// One text column of every asset row, in name order: what a migration left there.
async fn assets_column(db: &sea_orm::DatabaseConnection, column: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(
        sea_orm::DatabaseBackend::Postgres,
        format!("SELECT {column} AS value FROM assets ORDER BY name"),
    ))
    .await
    .unwrap()
    .iter()
    .map(|r| r.try_get::<String>("", "value").unwrap())
    .collect()
}

#[tokio::test]
async fn the_change_feed_migration_names_rows_written_before_it() {
    use migrations::MigratorTrait;
    let url = empty_postgres().await;
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    migrations::Migrator::up(&db, Some(5)).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO assets (namespace, source, kind, name, version, tags, labels, approved, links,
                             metadata, digest, created_at, updated_at)
         VALUES ('team-a', 'hf', 'Model', 'meta-llama/Llama-3.1-8B-Instruct', '3.1', '[]', '{}',
                 false, '[]', '{}', 'd', now(), now()),
                ('team-a', 'ibm', 'Model', 'granite', '3.0', '[]', '{}', false, '[]', '{}', 'd',
                 now(), now())",
    )
    .await
    .unwrap();
    migrations::Migrator::up(&db, None).await.unwrap();
    let names = assets_column(&db, "object_name").await;
    assert_eq!(names[0], "granite.v3-0.ibm");
    assert!(
        names[1].starts_with("meta-llama-llama-3-1-8b-instruct.v3-1.hf.x"),
        "{names:?}"
    );
}

/// A diff that calls a stored asset new (computed from stale digests) fails its refresh,
/// which changes nothing, instead of overwriting the row under a "create" event. The failed
/// `COPY` leaves the connection fit for the next refresh.
#[tokio::test]
async fn a_refresh_adding_an_asset_that_is_already_stored_fails_and_changes_nothing() {
    let (_, url) = postgres_store().await;
    let one_connection = store::StoreOptions {
        max_connections: 1,
        ..Default::default()
    };
    let store = store::connect_with(&url, &one_connection).await.unwrap();
    let team = ns("team-a");
    refresh(&store, &team, "src", models("m", 3)).await;
    let before = store.source_digests(&team, "src").await.unwrap();
    let mut changed = models("m", 3);
    changed[1] = changed[1].clone().with_approved(true);
    let stale = diff(&Default::default(), changed);
    assert_eq!(stale.added.len(), 3);
    let events: Vec<_> = stale
        .added
        .iter()
        .map(|r| audit(&team, "create", r.name()))
        .collect();
    let error = store
        .apply_refresh(&team, "src", &stale, &events)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("assets_natural_key"), "{error}");
    assert_eq!(store.source_digests(&team, "src").await.unwrap(), before);
    assert_eq!(
        store
            .list_audit_events(
                &NamespaceScope::single(team.clone()),
                &Default::default(),
                None,
                10
            )
            .await
            .unwrap()
            .len(),
        3,
        "the first refresh's events only"
    );

    let out = refresh(&store, &team, "src", models("m", 5)).await;
    assert_eq!((out.added, out.unchanged), (2, 3));
    assert_eq!(store.source_digests(&team, "src").await.unwrap().len(), 5);
}

#[tokio::test]
async fn the_description_terms_migration_makes_older_descriptions_searchable() {
    use migrations::MigratorTrait;
    let url = empty_postgres().await;
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    migrations::Migrator::up(&db, Some(8)).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO assets (namespace, source, kind, name, version, description, tags, labels,
                             approved, links, metadata, digest, created_at, updated_at)
         VALUES ('team-a', 'hf', 'Model', 'a', '1', 'Instruction-tuned, École ÉCOLE', '[]',
                 '{}', false, '[]', '{}', 'd', now(), now()),
                ('team-a', 'hf', 'Model', 'b', '1', NULL, '[]', '{}', false, '[]', '{}', 'd',
                 now(), now())",
    )
    .await
    .unwrap();
    migrations::Migrator::up(&db, None).await.unwrap();
    let terms = assets_column(&db, "description_terms").await;
    assert_eq!(terms, ["instruction tuned école", ""]);
    let store = store::connect(&url).await.unwrap();
    let found = store
        .list_assets(
            &NamespaceScope::single(ns("team-a")),
            &AssetQuery {
                text: Some("ÉCOLE instr".into()),
                ..AssetQuery::default()
            },
            Default::default(),
            None,
            10,
        )
        .await
        .unwrap();
    let names: Vec<&str> = found.items.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a"]);
}

/// Revisions are read in shared batches, yet every read reflects each commit that finished
/// before it was asked for: readers keep a batch in flight at all times, so a read asked for
/// right after a commit would see the old revision if it joined a batch already running.
#[tokio::test]
async fn a_revision_read_after_a_commit_reflects_it_while_others_read_concurrently() {
    let (store, _) = postgres_store().await;
    let team = ns("team-a");
    let scope = NamespaceScope::single(team.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (store, scope, stop) = (store.clone(), scope.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store.catalog_revisions(&scope).await.expect("read");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for round in 0..40 {
        let desired = (0..=round)
            .map(|i| record(AssetKind::Model, &format!("m{i}"), "1"))
            .collect();
        refresh(&store, &team, "src", desired).await;
        let head = store.feed_head().await.expect("head").revision;
        let seen = store.catalog_revisions(&scope).await.expect("revisions");
        assert_eq!(
            seen.namespaces,
            [("team-a".to_owned(), head)],
            "round {round}"
        );
        // Nothing started again: the same database all along.
        assert_eq!(seen.generation, 0, "round {round}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.expect("reader") > 0);
    }
}

/// A page's head is read before its rows, in the same transaction: every write at or below
/// the head is in the page (a watch from it misses nothing), for plain lists and for searches
/// (which find their ids as the owner, then read the rows in the scope) alike, while writes
/// commit concurrently. And the scope still holds: another namespace's rows never come back.
#[tokio::test]
async fn a_page_holds_every_write_at_or_below_the_head_it_reports() {
    let (store, _) = postgres_store().await;
    let team = ns("team-a");
    refresh(
        &store,
        &ns("team-b"),
        "src",
        vec![record(AssetKind::Model, "m-b", "1")],
    )
    .await;
    let scope = NamespaceScope::single(team.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = [None, Some("m".to_owned())]
        .into_iter()
        .map(|text| {
            let (store, scope, stop) = (store.clone(), scope.clone(), stop.clone());
            tokio::spawn(async move {
                let query = AssetQuery {
                    text,
                    ..Default::default()
                };
                let mut pages = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (head, page) = store
                        .list_assets_at_head(&scope, &query, Default::default(), None, 1_000)
                        .await
                        .expect("page");
                    let names: Vec<String> = page.items.into_iter().map(|a| a.name).collect();
                    pages.push((head.revision, names));
                }
                pages
            })
        })
        .collect();
    // The revision each round's asset was written at.
    let mut written = Vec::new();
    for round in 0..30 {
        let desired = (0..=round)
            .map(|i| record(AssetKind::Model, &format!("m{i}"), "1"))
            .collect();
        refresh(&store, &team, "src", desired).await;
        written.push((
            store.feed_head().await.expect("head").revision,
            format!("m{round}"),
        ));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        let pages = reader.await.expect("reader");
        assert!(!pages.is_empty());
        for (head, names) in &pages {
            assert!(!names.iter().any(|n| n == "m-b"), "another namespace's row");
            for (revision, name) in &written {
                if revision <= head {
                    assert!(
                        names.contains(name),
                        "{name} (revision {revision}) missing at head {head}"
                    );
                }
            }
        }
    }
}

/// A database dropped and created again (or restored from a backup) numbers its writes afresh,
/// so a namespace can come back to a revision number it had before, with other contents. The
/// revisions read after that carry a new generation, and so does every key built on them (the
/// API's response cache), so nothing built from the old database is served again.
#[tokio::test]
async fn revisions_read_from_a_database_created_again_start_a_new_generation() {
    let (store, url) = postgres_store().await;
    let team = ns("team-a");
    let scope = NamespaceScope::single(team.clone());
    refresh(
        &store,
        &team,
        "src",
        vec![record(AssetKind::Model, "old", "1")],
    )
    .await;
    let before = store.catalog_revisions(&scope).await.expect("revisions");
    assert_eq!(before.namespaces.len(), 1);
    assert!(before.namespaces[0].1 > 0);

    let name = url.rsplit_once('/').expect("a database name").1;
    let admin = sea_orm::Database::connect(admin_url().as_str())
        .await
        .expect("admin");
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .expect("drop");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create");
    store::migrate(&url).await.expect("migrate");
    // The pool's connections were cut: the first uses may fail while it reconnects.
    let mut after = None;
    for _ in 0..50 {
        let written = match store.source_digests(&team, "src").await {
            Ok(stored) => {
                let change = diff(&stored, vec![record(AssetKind::Model, "new", "1")]);
                store
                    .apply_refresh(&team, "src", &change, &[])
                    .await
                    .is_ok()
            }
            Err(_) => false,
        };
        if written && let Ok(revisions) = store.catalog_revisions(&scope).await {
            after = Some(revisions);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let after = after.expect("the store works again on the new database");
    let head = store.feed_head().await.expect("head").revision;
    assert_eq!(after.namespaces, [("team-a".to_owned(), head)]);
    assert!(
        after.generation > before.generation,
        "{before:?} then {after:?}"
    );
}
