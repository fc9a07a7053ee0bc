//! Module loading: `mpath` + `loadmodule`, with the ABI checks of `sipcore-abi`.
//!
//! Order of checks, each with its own error naming the file:
//! 1. the file exists (looked up in every `mpath` directory, as `NAME` and as `libNAME`, since
//!    cargo names a cdylib `libproto_ws.so`);
//! 2. `dlopen` succeeds;
//! 3. it exports `sipcore_module_abi` with our magic (otherwise it is not a sipcore module);
//! 4. its ABI major equals ours;
//! 5. abi_stable's own version and layout checks of the root module pass.
//!
//! abi_stable checks that the plugin's tables have *at least* the fields the host knows (a
//! newer plugin in an older host). For a plugin of an older minor (its stamp says so), the
//! loader checks the other direction instead: every field of the plugin's tables is a field of
//! ours, same type and place, ours only appending (the README's version rule). The fields it
//! lacks read as `None` through their `Option` accessors (the tables carry their own length).
use sipcore_abi::abi_stable::{
    abi_stability::abi_checking::check_layout_compatibility, library::lib_header_from_path,
    StableAbi,
};
use sipcore_abi::{AbiStamp, ModuleRef, TransportRef};
use sipcore_abi::{ABI_MAGIC, ABI_MAJOR, ABI_MINOR, ABI_STAMP_SYMBOL};
use std::path::{Path, PathBuf};

/// Why a module could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No such file in any `mpath` directory.
    #[error("module '{name}' not found (looked for: {tried})")]
    NotFound {
        /// The name given to `loadmodule`.
        name: String,
        /// Every path tried, joined with ", ".
        tried: String,
    },
    /// `dlopen` failed.
    #[error("{path}: cannot load shared library: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// dlerror() text.
        reason: String,
    },
    /// A shared library without our ABI stamp.
    #[error("{path}: not a sipcore module (no 'sipcore_module_abi' symbol, or wrong magic)")]
    NotAModule {
        /// The file.
        path: PathBuf,
    },
    /// Built for another major ABI version.
    #[error(
        "{path}: built for sipcore module ABI {major}.{minor}, but this sipcore speaks ABI \
         {ABI_MAJOR}.{ABI_MINOR}; rebuild the module against this sipcore"
    )]
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin's major.
        major: u32,
        /// The plugin's minor.
        minor: u32,
    },
    /// abi_stable refused the library (version or layout mismatch, or its constructor panicked).
    #[error("{path}: incompatible module: {reason}")]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// abi_stable's explanation.
        reason: String,
    },
}

/// A loaded module. Libraries are never unloaded (see the abi crate docs).
pub struct LoadedModule {
    /// The file it came from.
    pub path: PathBuf,
    /// Its root module.
    pub module: ModuleRef,
    /// `module.name`, copied.
    pub name: String,
}

impl LoadedModule {
    /// Its transport table, if it is a transport module.
    pub fn transport(&self) -> Option<TransportRef> {
        self.module.transport().into_option()
    }
}

/// Resolve `loadmodule "name"` against the `mpath` list: a name containing '/' is used as is;
/// otherwise each mpath directory is tried with `name` and `lib` + `name`.
pub fn resolve(name: &str, mpath: &[PathBuf]) -> Result<PathBuf, LoadError> {
    let mut tried = Vec::new();
    if name.contains('/') {
        let p = PathBuf::from(name);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    } else {
        for dir in mpath {
            for candidate in [name.to_string(), format!("lib{name}")] {
                let p = dir.join(candidate);
                if p.is_file() {
                    return Ok(p);
                }
                tried.push(p);
            }
        }
    }
    Err(LoadError::NotFound {
        name: name.to_string(),
        tried: tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Read the ABI stamp with a plain `dlopen`/`dlsym`, before abi_stable touches the library.
fn check_stamp(path: &Path) -> Result<AbiStamp, LoadError> {
    // SAFETY: loading a library runs its initialisers. We only load files the operator named
    // in the configuration, as every plugin host does.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| LoadError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // SAFETY: the symbol, when present, is a `#[no_mangle] static AbiStamp` (repr(C), plain data);
    // we only read it. A foreign library with a symbol of that name is caught by the magic check.
    let stamp = unsafe {
        match lib.get::<*const AbiStamp>(ABI_STAMP_SYMBOL) {
            Ok(sym) => std::ptr::read_unaligned(*sym),
            Err(_) => {
                return Err(LoadError::NotAModule {
                    path: path.to_path_buf(),
                })
            }
        }
    };
    // Keep the library mapped: abi_stable will open it again and never closes it either.
    std::mem::forget(lib);
    if stamp.magic != ABI_MAGIC {
        return Err(LoadError::NotAModule {
            path: path.to_path_buf(),
        });
    }
    if stamp.major != ABI_MAJOR {
        return Err(LoadError::AbiMismatch {
            path: path.to_path_buf(),
            major: stamp.major,
            minor: stamp.minor,
        });
    }
    Ok(stamp)
}

/// Load one module file.
pub fn load(path: &Path) -> Result<LoadedModule, LoadError> {
    let stamp = check_stamp(path)?;
    let incompatible = |e: &dyn std::fmt::Display| LoadError::Incompatible {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let header = lib_header_from_path(path).map_err(|e| incompatible(&e))?;
    let module = match header.layout() {
        Some(theirs) if stamp.minor < ABI_MINOR => {
            // An older plugin: its tables must be a prefix of ours.
            check_layout_compatibility(theirs, <ModuleRef as StableAbi>::LAYOUT)
                .map_err(|e| incompatible(&e))?;
            // SAFETY: the layout was checked just above, in the direction that fits a plugin
            // whose tables are shorter than ours; fields beyond its tables' length are only
            // read through accessors that check that length.
            unsafe { header.init_root_module_with_unchecked_layout::<ModuleRef>() }
                .map_err(|e| incompatible(&e))?
        }
        _ => header
            .init_root_module::<ModuleRef>()
            .map_err(|e| incompatible(&e))?,
    };
    let name = module.name().to_string();
    Ok(LoadedModule {
        path: path.to_path_buf(),
        module,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_tries_lib_prefix_and_reports_all_paths() {
        let dir = std::env::temp_dir().join(format!("sipcore-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("libfoo.so"), b"x").unwrap();
        assert_eq!(
            resolve("foo.so", std::slice::from_ref(&dir)).unwrap(),
            dir.join("libfoo.so")
        );
        let err = resolve("bar.so", std::slice::from_ref(&dir))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bar.so") && err.contains("libbar.so"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_library_file_is_refused_with_its_path() {
        let p = std::env::temp_dir().join(format!("sipcore-notlib-{}.so", std::process::id()));
        std::fs::write(&p, b"this is not an ELF file").unwrap();
        let err = load(&p).err().expect("must fail").to_string();
        assert!(err.contains(&p.display().to_string()), "{err}");
        assert!(err.contains("cannot load shared library"), "{err}");
        std::fs::remove_file(&p).unwrap();
    }
}
