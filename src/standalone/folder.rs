//! The manifests folder: which files it holds, what each last parsed to, and whether anything
//! changed since the last look. A file that fails to parse keeps its last good objects.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::SystemTime,
};

use super::manifests::{Identity, Object, parse};

/// Files under this subfolder are content served by the process, not manifests.
pub const FILES_DIR: &str = "files";

#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// (length, modification time) per file: cheap to take every second.
pub type Fingerprint = BTreeMap<PathBuf, (u64, Option<SystemTime>)>;

/// The files added, removed or changed from `old` to `new`.
pub fn changed_files(old: &Fingerprint, new: &Fingerprint) -> std::collections::BTreeSet<PathBuf> {
    old.iter()
        .filter(|(path, stamp)| new.get(*path) != Some(stamp))
        .map(|(path, _)| path.clone())
        .chain(
            new.iter()
                .filter(|(path, stamp)| old.get(*path) != Some(stamp))
                .map(|(path, _)| path.clone()),
        )
        .collect()
}

/// Something in the folder that was not applied, and what stays instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub path: PathBuf,
    /// The line of the offending field or document, when known.
    pub line: Option<usize>,
    pub message: String,
    /// The object concerned, when it could be read: the API shows a problem to those who may
    /// read that namespace's sources, and a refused source says so in its status.
    pub object: Option<Identity>,
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The message starts with its line ("line 9: …") when it has one.
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

pub struct Folder {
    root: PathBuf,
    self_url: String,
    /// The last good objects of each file.
    /// Each file's objects with the line their document starts on.
    files: BTreeMap<PathBuf, Vec<(usize, Object)>>,
    /// The stamp of each file as last read without a problem: unchanged, it is not read again.
    clean: BTreeMap<PathBuf, Stamp>,
    /// Files that failed on the last load (their last good objects stay in `files`).
    pub problems: Vec<FileProblem>,
}

/// A file's size and modification time: what says it changed.
type Stamp = (u64, Option<std::time::SystemTime>);

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok();
    (
        meta.as_ref().map_or(0, std::fs::Metadata::len),
        meta.and_then(|m| m.modified().ok()),
    )
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Every file under `dir`, descending into the folders `enter` accepts.
fn walk(
    dir: &Path,
    enter: &dyn Fn(&Path) -> bool,
    out: &mut Vec<PathBuf>,
) -> Result<(), FolderError> {
    let read = |source| FolderError::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.is_dir() {
            if enter(&path) {
                walk(&path, enter, out)?;
            }
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The manifest files: YAML and JSON anywhere but the served `files/` folder.
fn manifests(root: &Path) -> Result<Vec<PathBuf>, FolderError> {
    let served = root.join(FILES_DIR);
    let mut paths = Vec::new();
    walk(root, &|dir| dir != served, &mut paths)?;
    paths.retain(|p| is_manifest(p));
    Ok(paths)
}

impl Folder {
    pub fn new(root: PathBuf, self_url: String) -> Self {
        Self {
            root,
            self_url,
            files: BTreeMap::new(),
            clean: BTreeMap::new(),
            problems: Vec::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file under `files/` that `url` names when it points at this process's own
    /// `files/` route (`${CURIO_URL}/files/…`).
    pub fn served_file(&self, url: &str) -> Option<PathBuf> {
        let relative = url
            .strip_prefix(self.self_url.trim_end_matches('/'))?
            .strip_prefix("/files/")?;
        let relative = relative.split(['?', '#']).next().unwrap_or_default();
        Some(self.root.join(FILES_DIR).join(relative))
    }

    /// Every file's size and mtime, `files/` included (URL sources read it).
    pub fn fingerprint(&self) -> Result<Fingerprint, FolderError> {
        let mut paths = manifests(&self.root)?;
        let served = self.root.join(FILES_DIR);
        if served.is_dir() {
            walk(&served, &|_| true, &mut paths)?;
        }
        Ok(paths
            .into_iter()
            .map(|path| {
                let stamp = stamp(&path);
                (path, stamp)
            })
            .collect())
    }

    /// Reads every file again. Removed files drop their objects; files that fail keep their
    /// last good objects and are listed in `problems`.
    /// Reads every manifest. A refused document leaves the last good version of its object
    /// (from the file's previous read) in place, if there is one, and says which.
    pub fn load(&mut self) -> Result<(), FolderError> {
        let mut paths = manifests(&self.root)?;
        paths.sort();
        self.files
            .retain(|path, _| paths.binary_search(path).is_ok());
        self.clean
            .retain(|path, _| paths.binary_search(path).is_ok());
        self.problems.clear();
        for path in paths {
            // Unchanged since it was last read without a problem: its objects stand. (With a
            // hundred tenants, parsing every catalog again on each change was most of a pass.)
            let now = stamp(&path);
            if self.clean.get(&path) == Some(&now) && self.files.contains_key(&path) {
                continue;
            }
            self.clean.remove(&path);
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    let note = if self.files.contains_key(&path) {
                        "its last good objects stay"
                    } else {
                        "nothing from it is applied"
                    };
                    self.problems.push(FileProblem {
                        path,
                        line: None,
                        message: format!("reading it failed: {e}; {note}"),
                        object: None,
                    });
                    continue;
                }
            };
            let parsed = parse(&text, &self.self_url);
            if parsed.problems.is_empty() {
                self.clean.insert(path.clone(), now);
            }
            let previous = self.files.get(&path);
            let mut objects = parsed.objects;
            // A document that cannot even be read cannot say which object it was: keep every
            // object the file defined before and no longer defines.
            if parsed.problems.iter().any(|p| p.identity.is_none())
                && let Some(previous) = previous
            {
                for (line, object) in previous {
                    let defined = object.identity();
                    if !objects.iter().any(|(_, o)| o.identity() == defined) {
                        objects.push((*line, object.clone()));
                    }
                }
            }
            for problem in parsed.problems {
                let kept = problem.identity.as_ref().and_then(|id| {
                    previous?
                        .iter()
                        .find(|(_, o)| o.identity().as_ref() == Some(id))
                        .cloned()
                });
                let note = match (&problem.identity, &kept) {
                    (Some(id), Some(_)) => format!("{id} keeps its last good version"),
                    (Some(id), None) => format!("{id} is not applied (no earlier good version)"),
                    (None, _) if previous.is_some() => {
                        "the objects this file defined before stay".to_owned()
                    }
                    (None, _) => "the document is not applied".to_owned(),
                };
                if let Some(kept) = kept
                    && !objects
                        .iter()
                        .any(|(_, o)| o.identity() == kept.1.identity())
                {
                    objects.push(kept);
                }
                self.problems.push(FileProblem {
                    path: path.clone(),
                    line: Some(problem.error.line),
                    message: format!("{problem}; {note}", problem = problem.error),
                    object: problem.identity.clone(),
                });
            }
            self.files.insert(path, objects);
        }
        Ok(())
    }

    /// Every object with its file and the line its document starts on.
    pub fn objects(&self) -> impl Iterator<Item = (&Path, usize, &Object)> {
        self.files.iter().flat_map(|(path, objects)| {
            objects
                .iter()
                .map(move |(line, object)| (path.as_path(), *line, object))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_file_keeps_its_last_good_objects() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ns.yaml");
        std::fs::write(&file, "kind: Namespace\nmetadata: {name: team-a}\n").unwrap();
        std::fs::create_dir(dir.path().join(FILES_DIR)).unwrap();
        std::fs::write(dir.path().join(FILES_DIR).join("c.yaml"), "assets: []").unwrap();
        let mut folder = Folder::new(dir.path().to_owned(), String::new());
        folder.load().unwrap();
        assert_eq!(
            folder.objects().count(),
            1,
            "files/ is not read as manifests"
        );

        std::fs::write(&file, "kind: Namespace\nmetadata: {name: [oops\n").unwrap();
        folder.load().unwrap();
        assert_eq!(folder.problems.len(), 1);
        assert!(
            folder.problems[0].message.contains("line"),
            "{:?}",
            folder.problems
        );
        assert!(matches!(
            folder.objects().next().unwrap().2,
            Object::Namespace { name, .. } if name == "team-a"
        ));

        std::fs::remove_file(&file).unwrap();
        folder.load().unwrap();
        assert_eq!(folder.objects().count(), 0);
        assert!(folder.problems.is_empty());
    }

    fn namespace_names(folder: &Folder) -> Vec<String> {
        folder
            .objects()
            .filter_map(|(_, _, o)| match o {
                Object::Namespace { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn only_changed_or_failing_files_are_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        std::fs::write(&a, "kind: Namespace\nmetadata: {name: team-a}\n").unwrap();
        std::fs::write(&b, "kind: Namespace\nmetadata: {name: [oops\n").unwrap();
        let mut folder = Folder::new(dir.path().to_owned(), String::new());
        folder.load().unwrap();
        assert_eq!(namespace_names(&folder), ["team-a"]);
        assert_eq!(folder.problems.len(), 1);

        // Same size and modification time (content swapped behind the stamp's back): not
        // read again, so its objects are the ones read before.
        let (_, modified) = stamp(&a);
        std::fs::write(&a, "kind: Namespace\nmetadata: {name: team-q}\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&a)
            .unwrap()
            .set_modified(modified.unwrap())
            .unwrap();
        folder.load().unwrap();
        assert_eq!(namespace_names(&folder), ["team-a"]);
        // The failing file is read again, and says so again.
        assert_eq!(folder.problems.len(), 1, "{:?}", folder.problems);

        // Changed: read again.
        std::fs::write(&a, "kind: Namespace\nmetadata: {name: team-z}\n").unwrap();
        std::fs::write(&b, "kind: Namespace\nmetadata: {name: team-b}\n").unwrap();
        folder.load().unwrap();
        assert_eq!(namespace_names(&folder), ["team-z", "team-b"]);
        assert!(folder.problems.is_empty());
    }
}
