//! Where the data goes, and on what file system.

use std::path::{Path, PathBuf};

/// File systems that keep data in memory: fdatasync on them measures nothing.
const MEMORY_FS: [&str; 2] = ["tmpfs", "ramfs"];

/// The mount holding a path: (file system type, device, mount point).
pub fn mount_of(path: &Path) -> Option<(String, String, PathBuf)> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, mnt, ty) = (f.next()?, f.next()?, f.next()?);
            let mnt = PathBuf::from(mnt.replace("\\040", " "));
            path.starts_with(&mnt)
                .then(|| (ty.to_owned(), dev.to_owned(), mnt))
        })
        .max_by_key(|(_, _, mnt)| mnt.as_os_str().len())
}

/// The base directory for the run's temporary data directory, and a description of where it
/// is. An explicit `--dir` is used as given (with a warning in the description if it is
/// memory-backed); otherwise the current directory, or /var/tmp if that is memory-backed.
pub fn choose_dir(explicit: Option<&Path>) -> Result<(PathBuf, String), super::super::CmdError> {
    let describe = |p: &Path| match mount_of(p) {
        Some((ty, dev, mnt)) => {
            let warn = if MEMORY_FS.contains(&ty.as_str()) {
                " -- WARNING: memory-backed, fdatasync is a no-op"
            } else {
                ""
            };
            (
                MEMORY_FS.contains(&ty.as_str()),
                format!("{ty} on {dev}, mounted at {}{warn}", mnt.display()),
            )
        }
        None => (false, "file system unknown".to_owned()),
    };
    if let Some(dir) = explicit {
        std::fs::create_dir_all(dir)?;
        let (_, d) = describe(dir);
        return Ok((dir.to_path_buf(), format!("--dir: {d}")));
    }
    let cwd = std::env::current_dir()?;
    let (in_memory, d) = describe(&cwd);
    if !in_memory {
        return Ok((cwd, format!("default: current directory, {d}")));
    }
    let var_tmp = PathBuf::from("/var/tmp");
    let (in_memory, d) = describe(&var_tmp);
    if in_memory {
        return Err(
            "the current directory and /var/tmp are both on tmpfs: pass --dir on a disk".into(),
        );
    }
    Ok((
        var_tmp,
        format!("default: /var/tmp, since the current directory is on tmpfs; {d}"),
    ))
}
