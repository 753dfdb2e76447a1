//! Standalone mode checks manifests as a kube-apiserver with strict field validation and the
//! CRDs' CEL rules would: each broken manifest below is refused with its file, the line of the
//! offending field and what is wrong, and nothing else changes. And a restart keeps identities.

use std::{path::Path, sync::Arc, time::Duration};

use curio::{
    access::authz::{Attributes, Decision},
    access::identity::UserInfo,
    cluster::memory::MemoryCluster,
    controller::Context,
    source::{http::UrlFetcher, policy::AddressPolicy},
    standalone::{Standalone, SyncReport, folder::Folder},
};
use kube::ResourceExt;

const TEAM_A: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
---
apiVersion: curio.dev/v1alpha1
kind: CatalogSource
metadata:
  name: models
  namespace: team-a
spec:
  source:
    inline:
      assets:
      - kind: Model
        name: granite
        version: '3'
---
apiVersion: curio.dev/v1alpha1
kind: RefreshJob
metadata:
  name: refresh
  namespace: team-a
spec:
  reason: first load
  sourceRef:
    name: models
";

const RBAC: &str = "\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: catalog-viewer
rules:
- apiGroups: [curio.dev]
  resources: [models]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: vera-views
  namespace: team-a
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: catalog-viewer
subjects:
- kind: User
  name: vera
";

/// A source header for the cases: the spec follows from line 6.
const SOURCE: &str = "\
apiVersion: curio.dev/v1alpha1
kind: CatalogSource
metadata:
  name: extra
  namespace: team-a
spec:
";

struct Harness {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    runner: Standalone,
}

/// A standalone runner on the folder `root` and the SQLite database `database`: a process.
async fn runner(root: &Path, database: &Path) -> Standalone {
    let url = format!("sqlite://{}?mode=rwc", database.display());
    curio::store::migrate(&url).await.unwrap();
    let store = curio::store::connect(&url).await.unwrap();
    let cluster = Arc::new(MemoryCluster::default());
    let ctx = Context::new(
        store,
        cluster.clone(),
        "system:curio-standalone".into(),
        UrlFetcher::new(AddressPolicy::default(), Duration::from_secs(2)).unwrap(),
    );
    Standalone::new(
        ctx,
        cluster,
        Folder::new(root.to_owned(), "http://127.0.0.1:1".into()),
    )
}

async fn harness(dir: tempfile::TempDir) -> Harness {
    let root = dir.path().join("manifests");
    let runner = runner(&root, &dir.path().join("curio.db")).await;
    Harness {
        _dir: dir,
        root,
        runner,
    }
}

fn write(root: &Path, file: &str, text: &str) {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join(file), text).unwrap();
}

/// What the folder put in effect: sources, jobs, and what vera may do.
fn state(runner: &Standalone) -> String {
    fn line(kind: &str, object: &impl ResourceExt, spec: String) -> String {
        let meta = object.meta();
        format!(
            "{kind} {}/{} uid={:?} gen={:?} spec={spec}",
            object.namespace().unwrap_or_default(),
            object.name_any(),
            meta.uid,
            meta.generation,
        )
    }
    let mut out: Vec<String> = runner
        .cluster
        .all_sources()
        .iter()
        .map(|s| line("source", s, serde_json::to_string(&s.spec).unwrap()))
        .collect();
    out.extend(
        runner
            .cluster
            .all_jobs()
            .iter()
            .map(|j| line("job", j, serde_json::to_string(&j.spec).unwrap())),
    );
    let vera = UserInfo::authenticated("vera".into(), None, vec![]);
    let may = runner.rbac.current().decide(&Attributes {
        user: vera,
        group: curio::access::authz::API_GROUP,
        verb: "list",
        resource: "models".into(),
        namespace: "team-a".into(),
        name: None,
    });
    out.push(format!("vera lists models: {}", may == Decision::Allow));
    out.sort();
    out.join("\n")
}

async fn sync(h: &mut Harness) -> SyncReport {
    h.runner.sync().await.expect("the folder reads")
}

struct Case {
    what: &'static str,
    /// Written to `file` (a new file unless it is one of the base files).
    file: &'static str,
    /// The file the problem is reported in, when not `file`.
    reported_in: Option<&'static str>,
    text: String,
    line: usize,
    message: &'static str,
}

fn case(what: &'static str, text: String, line: usize, message: &'static str) -> Case {
    Case {
        what,
        file: "case.yaml",
        reported_in: None,
        text,
        line,
        message,
    }
}

fn cases() -> Vec<Case> {
    let source = |spec: &str| format!("{SOURCE}{spec}");
    let inline = "  source:\n    inline:\n      assets: []\n";
    vec![
        case(
            "a misspelled spec field",
            source(&format!("{inline}  intervall: 5m\n")),
            10,
            "CatalogSource team-a/extra: spec.intervall: unknown field",
        ),
        case(
            "a misspelled source",
            source("  sorce:\n    inline:\n      assets: []\n"),
            7,
            "spec.sorce: unknown field",
        ),
        case(
            "a misspelled approval in a curation rule",
            source(&format!("{inline}  curation:\n  - match: '*'\n    aproved: true\n")),
            12,
            "spec.curation[0].aproved: unknown field",
        ),
        case(
            "a misspelled field in an inline asset",
            source(
                "  source:\n    inline:\n      assets:\n      - kind: Model\n        name: a\n      - kind: Model\n        name: b\n        licence: mit\n",
            ),
            14,
            "spec.source.inline.assets[1].licence: unknown field",
        ),
        case(
            "a misspelled metadata field",
            format!("apiVersion: curio.dev/v1alpha1\nkind: CatalogSource\nmetadata:\n  name: extra\n  namespace: team-a\n  lables: {{a: b}}\nspec:\n{inline}"),
            6,
            "metadata.lables: unknown field",
        ),
        case(
            "a misspelled top-level field",
            format!("{SOURCE}{inline}status: {{}}\nspek: {{}}\n"),
            11,
            "spek: unknown field",
        ),
        case(
            "a misspelled curio.dev kind",
            "apiVersion: curio.dev/v1alpha1\nkind: CatalogSorce\nmetadata:\n  name: extra\n  namespace: team-a\nspec: {}\n".into(),
            1,
            "curio.dev has no kind \"CatalogSorce\"",
        ),
        case(
            "a wrong apiVersion",
            "apiVersion: curio.dev/v1\nkind: CatalogSource\nmetadata:\n  name: extra\n  namespace: team-a\nspec: {}\n".into(),
            1,
            "apiVersion must be curio.dev/v1alpha1",
        ),
        case(
            "two source types (CEL)",
            source("  source:\n    configMap:\n      name: c\n    url:\n      url: https://example.com/c.yaml\n"),
            7,
            "exactly one of inline, configMap, url or mcpRegistry",
        ),
        case(
            "an interval under ten seconds (CEL)",
            source(&format!("{inline}  interval: 1s\n")),
            10,
            "at least 10s",
        ),
        case(
            "a RefreshJob with no target (CEL)",
            "apiVersion: curio.dev/v1alpha1\nkind: RefreshJob\nmetadata:\n  name: extra\n  namespace: team-a\nspec:\n  reason: nothing\n".into(),
            6,
            "exactly one of sourceRef or selector",
        ),
        Case {
            what: "an edited RefreshJob spec (immutable, CEL transition rule)",
            file: "team-a.yaml",
            reported_in: None,
            text: TEAM_A.replace("reason: first load", "reason: changed my mind"),
            line: 19,
            message: "immutable",
        },
        case(
            "a role reference of a misspelled kind",
            RBAC.replace("kind: ClusterRole\n  name: catalog-viewer\nsubjects", "kind: Clusterrole\n  name: catalog-viewer\nsubjects"),
            10,
            "roleRef.kind \"Clusterrole\" is not Role or ClusterRole",
        ),
        case(
            "a subject of a misspelled kind",
            RBAC.replace("- kind: User", "- kind: user"),
            10,
            "subject kind \"user\"",
        ),
        // Files are read in path order: the second definition is team-a.yaml's.
        Case {
            reported_in: Some("team-a.yaml"),
            ..case(
                "a second definition of a source",
                TEAM_A.split("---\n").nth(1).unwrap().to_owned(),
                6,
                "CatalogSource team-a/models is also defined at",
            )
        },
        case(
            "broken YAML",
            source("  source: {inline: {assets: [}\n"),
            7,
            "",
        ),
        case(
            "a document without a kind",
            "apiVersion: v1\nmetadata:\n  name: x\n".into(),
            1,
            "a document without a kind",
        ),
        case(
            "a misspelled CatalogPolicy limit",
            "apiVersion: curio.dev/v1alpha1\nkind: CatalogPolicy\nmetadata:\n  name: quota\nspec:\n  limits:\n    maxSorces: 2\n".into(),
            7,
            "CatalogPolicy /quota: spec.limits.maxSorces: unknown field",
        ),
        case(
            "a CatalogPolicy selector with an unknown operator",
            "apiVersion: curio.dev/v1alpha1\nkind: CatalogPolicy\nmetadata:\n  name: quota\nspec:\n  namespaceSelector:\n    matchExpressions:\n    - {key: tier, operator: Near}\n".into(),
            5,
            "operator must be In, NotIn, Exists or DoesNotExist",
        ),
        case(
            "a source without a name",
            format!("apiVersion: curio.dev/v1alpha1\nkind: CatalogSource\nmetadata:\n  namespace: team-a\nspec:\n{inline}"),
            1,
            "a CatalogSource without metadata.name",
        ),
    ]
}

#[tokio::test]
async fn broken_manifests_are_refused_with_file_line_and_reason_and_change_nothing() {
    let mut h = harness(tempfile::tempdir().unwrap()).await;
    write(&h.root, "team-a.yaml", TEAM_A);
    write(&h.root, "rbac.yaml", RBAC);
    let report = sync(&mut h).await;
    assert_eq!(report.problems, [], "the base folder is clean");
    h.runner.reconcile_due().await;
    let baseline = state(&h.runner);
    assert!(baseline.contains("vera lists models: true"), "{baseline}");
    let cases = cases();
    assert!(cases.len() >= 15);
    for case in &cases {
        let rbac_case = case.text.contains("RoleBinding");
        // RBAC cases replace the RBAC file, so the old binding is what must stay in effect.
        let file = if rbac_case { "rbac.yaml" } else { case.file };
        write(&h.root, file, &case.text);
        let report = sync(&mut h).await;
        let found: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        let problem = report
            .problems
            .iter()
            .find(|p| {
                p.path.ends_with(case.reported_in.unwrap_or(file))
                    && p.message.contains(case.message)
            })
            .unwrap_or_else(|| {
                panic!(
                    "{}: no problem in {file} saying {:?}: {found:#?}",
                    case.what, case.message
                )
            });
        assert_eq!(problem.line, Some(case.line), "{}: {problem}", case.what);
        assert!(
            problem
                .message
                .starts_with(&format!("line {}: ", case.line)),
            "{}: {problem}",
            case.what
        );
        assert_eq!(
            state(&h.runner),
            baseline,
            "{}: something else changed",
            case.what
        );
        // Put the folder back.
        match file {
            "team-a.yaml" => write(&h.root, file, TEAM_A),
            "rbac.yaml" => write(&h.root, file, RBAC),
            _ => std::fs::remove_file(h.root.join(file)).unwrap(),
        }
        let report = sync(&mut h).await;
        assert_eq!(
            report.problems,
            [],
            "{}: the fixed folder is clean",
            case.what
        );
        assert_eq!(state(&h.runner), baseline, "{}", case.what);
    }
}

#[tokio::test]
async fn a_problem_says_whether_a_last_good_version_stays() {
    let mut h = harness(tempfile::tempdir().unwrap()).await;
    write(&h.root, "team-a.yaml", TEAM_A);
    sync(&mut h).await;
    write(
        &h.root,
        "team-a.yaml",
        &TEAM_A.replace("  source:\n    inline:", "  sorce:\n    inline:"),
    );
    let report = sync(&mut h).await;
    assert!(
        report.problems[0]
            .message
            .ends_with("CatalogSource team-a/models keeps its last good version"),
        "{:?}",
        report.problems
    );
    // The refused source says so in its status, which the API reads from the store.
    h.runner.reconcile_due().await;
    let accepted = |status: Option<serde_json::Value>| {
        status
            .and_then(|s| s["conditions"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .find(|c| c["type"] == "Accepted")
    };
    let stored = |h: &Harness| {
        let store = h.runner.ctx.store.clone();
        async move {
            store
                .get_object(
                    curio::store::ObjectTable::CatalogSources,
                    &curio::store::Namespace::new("team-a").unwrap(),
                    "models",
                )
                .await
                .unwrap()
                .unwrap()
                .status
        }
    };
    let condition = accepted(stored(&h).await).expect("an Accepted condition");
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "InvalidManifest");
    assert!(
        condition["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("team-a.yaml: line 12: ") && m.contains("spec.sorce")),
        "{condition}"
    );
    let ready = stored(&h).await.unwrap()["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "the last good version is still served");
    write(&h.root, "team-a.yaml", TEAM_A);
    sync(&mut h).await;
    h.runner.reconcile_due().await;
    assert_eq!(
        accepted(stored(&h).await),
        None,
        "accepted again: no condition"
    );

    write(&h.root, "new.yaml", &format!("{SOURCE}  sorce: {{}}\n"));
    let report = sync(&mut h).await;
    let new = report
        .problems
        .iter()
        .find(|p| p.path.ends_with("new.yaml"))
        .unwrap();
    assert!(
        new.message
            .ends_with("CatalogSource team-a/extra is not applied (no earlier good version)"),
        "{new}"
    );
}

#[tokio::test]
async fn a_restart_keeps_identities_and_runs_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("curio.db");
    let mut h = harness(dir).await;
    write(&h.root, "team-a.yaml", TEAM_A);
    sync(&mut h).await;
    h.runner.reconcile_due().await;
    let phase = |runner: &Standalone| {
        let job = runner.cluster.get_job("team-a", "refresh").unwrap();
        job.status.and_then(|s| s.phase).map(|p| format!("{p:?}"))
    };
    assert_eq!(phase(&h.runner).as_deref(), Some("Succeeded"));
    let before = state(&h.runner);
    let events = |runner: &Standalone| {
        let store = runner.ctx.store.clone();
        async move {
            let scope = curio::store::NamespaceScope::single(
                curio::store::Namespace::new("team-a").unwrap(),
            );
            store
                .list_audit_events(&scope, &Default::default(), None, 1000)
                .await
                .unwrap()
                .len()
        }
    };
    let audited = events(&h.runner).await;
    assert!(audited > 0);

    // A new process on the same database and folder.
    let mut again = runner(&h.root, &database).await;
    again.sync().await.unwrap();
    again.reconcile_due().await;
    assert_eq!(state(&again), before, "same uids, generations and specs");
    assert_eq!(
        phase(&again).as_deref(),
        Some("Succeeded"),
        "the finished job is not run again"
    );
    assert_eq!(
        events(&again).await,
        audited,
        "the audit trail gains no rows"
    );
}

#[tokio::test]
async fn catalog_policies_in_the_folder_limit_and_pause_its_sources() {
    use curio::decisions::conditions::{PAUSED_BY_POLICY, RECONCILING};
    let mut h = harness(tempfile::tempdir().unwrap()).await;
    write(&h.root, "team-a.yaml", TEAM_A);
    write(
        &h.root,
        "team-b.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-b\n  labels: {tier: free}\n---\n\
apiVersion: curio.dev/v1alpha1\nkind: CatalogSource\nmetadata:\n  name: big\n  namespace: team-b\nspec:\n  source:\n    inline:\n      assets:\n      - {kind: Model, name: one}\n      - {kind: Model, name: two}\n",
    );
    let policy = "apiVersion: curio.dev/v1alpha1\nkind: CatalogPolicy\nmetadata:\n  name: free-tier\nspec:\n  namespaceSelector:\n    matchLabels: {tier: free}\n  limits:\n    maxAssetsPerSource: 1\n";
    write(&h.root, "policy.yaml", policy);
    let report = sync(&mut h).await;
    assert_eq!(report.problems, []);
    assert_eq!(report.policies, 1);
    h.runner.reconcile_due().await;
    let reason = |runner: &Standalone, ns: &str, name: &str, type_: &str| {
        let source = runner.cluster.get_source(ns, name).unwrap();
        source
            .status
            .unwrap_or_default()
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status, c.reason))
    };
    // The labelled namespace is limited; team-a is not selected.
    assert_eq!(
        reason(&h.runner, "team-b", "big", "Ready"),
        Some(("False".into(), "QuotaExceeded".into()))
    );
    assert_eq!(
        reason(&h.runner, "team-a", "models", "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );

    // A broken edit of the policy keeps the last good one in force.
    write(
        &h.root,
        "policy.yaml",
        &policy.replace("maxAssetsPerSource", "maxAssetsPerSorce"),
    );
    let report = sync(&mut h).await;
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    h.runner.reconcile_due().await;
    assert_eq!(
        reason(&h.runner, "team-b", "big", "Ready"),
        Some(("False".into(), "QuotaExceeded".into()))
    );

    // Paused for every namespace: team-a keeps its catalog and says why it does not refresh.
    write(
        &h.root,
        "policy.yaml",
        "apiVersion: curio.dev/v1alpha1\nkind: CatalogPolicy\nmetadata:\n  name: freeze\nspec:\n  paused: true\n",
    );
    assert_eq!(sync(&mut h).await.problems, []);
    h.runner.reconcile_due().await;
    assert_eq!(
        reason(&h.runner, "team-a", "models", RECONCILING),
        Some(("False".into(), PAUSED_BY_POLICY.into()))
    );
    assert_eq!(
        reason(&h.runner, "team-a", "models", "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    // The policy goes: team-b (no longer limited) refreshes with both assets.
    std::fs::remove_file(h.root.join("policy.yaml")).unwrap();
    sync(&mut h).await;
    h.runner.reconcile_due().await;
    assert_eq!(
        reason(&h.runner, "team-b", "big", "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert_eq!(reason(&h.runner, "team-a", "models", RECONCILING), None);
}

/// A ConfigMap source in `namespace` reading `assets` model names.
fn config_map_source(namespace: &str, assets: &[&str]) -> String {
    let catalog: Vec<String> = assets
        .iter()
        .map(|a| format!("      - {{kind: Model, name: {a}}}"))
        .collect();
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: catalog, namespace: {namespace}}}\n\
         data:\n  catalog.yaml: |\n    assets:\n{}\n---\n\
         apiVersion: curio.dev/v1alpha1\nkind: CatalogSource\n\
         metadata: {{name: models, namespace: {namespace}}}\n\
         spec: {{source: {{configMap: {{name: catalog}}}}}}\n",
        catalog.join("\n")
    )
}

/// One tenant's edit fetches that tenant's source again, not every source in the folder (with
/// a hundred tenants editing every ten seconds, refetching all of them on each edit left every
/// refresh waiting behind the others: found by curio-acceptance).
#[tokio::test]
async fn an_edit_fetches_only_the_sources_it_touches() {
    let mut h = harness(tempfile::tempdir().unwrap()).await;
    write(&h.root, "a.yaml", &config_map_source("team-a", &["one"]));
    write(&h.root, "b.yaml", &config_map_source("team-b", &["two"]));
    sync(&mut h).await;
    h.runner.reconcile_due().await;
    let ctx = h.runner.ctx.clone();
    let fetched = || {
        ctx.metrics
            .fetches
            .get_or_create(&curio::controller::metrics::FetchLabels {
                source: "configMap".into(),
                outcome: "fetched".into(),
            })
            .get()
    };
    assert_eq!(fetched(), 2);
    // The file's mtime must move on for the folder to notice; write a different size too.
    write(
        &h.root,
        "a.yaml",
        &config_map_source("team-a", &["one", "three"]),
    );
    sync(&mut h).await;
    h.runner.reconcile_due().await;
    assert_eq!(fetched(), 3, "only team-a's source is fetched again");
    let page = h
        .runner
        .ctx
        .store
        .list_assets(
            &curio::store::NamespaceScope::single(curio::store::Namespace::new("team-a").unwrap()),
            &Default::default(),
            Default::default(),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2, "team-a's edit is in");
    // A policy change may pause or resume anything: every source is looked at again.
    write(
        &h.root,
        "policy.yaml",
        "apiVersion: curio.dev/v1alpha1\nkind: CatalogPolicy\nmetadata: {name: all}\nspec: {}\n",
    );
    sync(&mut h).await;
    h.runner.reconcile_due().await;
    assert_eq!(fetched(), 5);
}
