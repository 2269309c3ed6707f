//! Checking that a PID names a KVM process, with a clear error otherwise.

use std::{fs, path::Path};

/// Why a PID cannot be traced.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("no process {0}")]
    NoProcess(u32),
    #[error("process {0} is not a KVM process (it holds no kvm-vm file descriptor)")]
    NotKvm(u32),
    #[error("cannot inspect process {0}'s file descriptors: {1} (run as root)")]
    NoPermission(u32, String),
}

/// Ok when process `pid` holds a KVM VM file descriptor.
pub fn check_kvm_process(pid: u32) -> Result<(), TargetError> {
    let proc = Path::new("/proc").join(pid.to_string());
    if !proc.exists() {
        return Err(TargetError::NoProcess(pid));
    }
    let fds = fs::read_dir(proc.join("fd")).map_err(|e| TargetError::NoPermission(pid, e.to_string()))?;
    let is_kvm = fds
        .filter_map(|e| e.ok())
        .filter_map(|e| fs::read_link(e.path()).ok())
        .any(|target| target.to_string_lossy() == "anon_inode:kvm-vm");
    if is_kvm { Ok(()) } else { Err(TargetError::NotKvm(pid)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_process_is_not_a_kvm_process() {
        assert_eq!(check_kvm_process(std::process::id()), Err(TargetError::NotKvm(std::process::id())));
    }

    #[test]
    fn a_pid_that_does_not_exist_is_named() {
        assert_eq!(check_kvm_process(u32::MAX - 1), Err(TargetError::NoProcess(u32::MAX - 1)));
    }
}
