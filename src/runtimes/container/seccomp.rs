//! The seccomp profile every container Cargo runs under: Docker's default allowlist
//! approach, tightened for what a Cargo is (a program that reads stdin, computes, maybe uses
//! a GPU, and writes stdout, with every capability dropped). The reference's own profiles
//! could not even exec; this one allows what ordinary programs and their runtimes (glibc,
//! musl, Python, CUDA) call, and nothing else.
//!
//! Tighter than Docker's default:
//! - only the native 64-bit ABIs (x86-64, AArch64): no 32-bit x86, x32 or 32-bit Arm entry
//!   points, which have had their own kernel bugs;
//! - no syscalls that only a capability would unlock (Island drops every capability, so
//!   those entries of Docker's profile can never apply here);
//! - no `ptrace`, `process_vm_readv`/`process_vm_writev` (reading other processes),
//!   `io_uring_*` (a large kernel surface; programs fall back to plain I/O), `vmsplice`,
//!   `remap_file_pages`, `name_to_handle_at`, `fanotify_mark` or `modify_ldt`;
//! - as in Docker's: `clone` without namespace flags only, `clone3` answered "not
//!   implemented" so that libc falls back to `clone`, no `AF_VSOCK` sockets, and
//!   `personality` only for its harmless values.

use serde_json::{Value, json};

/// The errno a refused syscall gets: EPERM, as in Docker's profile.
const EPERM: u32 = 1;
/// ENOSYS, for `clone3` (libc then uses `clone`, whose flags can be checked).
const ENOSYS: u32 = 38;
/// The namespace flags of `clone` (CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER |
/// NEWPID | NEWNET): a Cargo may not make namespaces.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
/// `AF_VSOCK`: a channel to the hypervisor, never a Cargo's business.
const AF_VSOCK: u64 = 40;
/// `personality` values programs use harmlessly: `PER_LINUX` (0), `PER_LINUX32` (8),
/// `UNAME26` (0x20000), the last two together, and 0xffffffff, which only asks.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Files, directories, descriptors and their I/O.
const FILES: &str = "\
    access faccessat faccessat2 chdir fchdir getcwd chmod fchmod fchmodat fchmodat2 chown fchown \
    fchownat lchown close close_range creat open openat openat2 dup dup2 dup3 fcntl flock fsync \
    fdatasync syncfs sync sync_file_range fallocate ftruncate truncate fadvise64 readahead getdents \
    getdents64 link linkat symlink symlinkat readlink readlinkat rename renameat renameat2 unlink \
    unlinkat mkdir mkdirat rmdir mknod mknodat stat lstat fstat newfstatat statx statfs fstatfs umask \
    utime utimes utimensat futimesat lseek read write readv writev pread64 pwrite64 preadv preadv2 \
    pwritev pwritev2 sendfile copy_file_range splice tee getxattr lgetxattr fgetxattr listxattr \
    llistxattr flistxattr setxattr lsetxattr fsetxattr removexattr lremovexattr fremovexattr \
    inotify_init inotify_init1 inotify_add_watch inotify_rm_watch ioctl";

/// Waiting on descriptors, pipes, event and timer descriptors, asynchronous I/O.
const WAITING: &str = "\
    epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2 poll ppoll select pselect6 \
    eventfd eventfd2 signalfd signalfd4 timerfd_create timerfd_settime timerfd_gettime pipe pipe2 \
    io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents";

/// Memory.
const MEMORY: &str = "\
    brk mmap munmap mremap mprotect madvise mincore msync mlock mlock2 mlockall munlock munlockall \
    membarrier memfd_create pkey_alloc pkey_free pkey_mprotect";

/// Processes and threads: their life, ids, limits and what they may learn of the system.
const PROCESSES: &str = "\
    execve execveat fork vfork exit exit_group wait4 waitid kill tkill tgkill getpid getppid gettid \
    getpgid setpgid getpgrp getsid setsid getuid geteuid getgid getegid getresuid getresgid getgroups \
    setuid setgid setreuid setregid setresuid setresgid setgroups setfsuid setfsgid capget capset prctl \
    arch_prctl set_tid_address set_robust_list get_robust_list rseq futex futex_waitv getrlimit \
    setrlimit prlimit64 getrusage times getpriority setpriority ioprio_get ioprio_set pidfd_open \
    pidfd_send_signal process_mrelease seccomp landlock_create_ruleset landlock_add_rule \
    landlock_restrict_self uname sysinfo getcpu getrandom restart_syscall";

/// Signals and interval timers.
const SIGNALS: &str = "\
    rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigsuspend rt_sigtimedwait rt_sigqueueinfo \
    rt_tgsigqueueinfo sigaltstack pause alarm getitimer setitimer timer_create timer_settime \
    timer_gettime timer_getoverrun timer_delete";

/// Clocks (reading them; setting them needs a capability) and sleeping.
const TIME: &str = "\
    clock_gettime clock_getres clock_nanosleep nanosleep gettimeofday time adjtimex clock_adjtime";

/// Scheduling of the Cargo's own threads.
const SCHEDULING: &str = "\
    sched_yield sched_getaffinity sched_setaffinity sched_getparam sched_setparam sched_getscheduler \
    sched_setscheduler sched_getattr sched_setattr sched_get_priority_max sched_get_priority_min \
    sched_rr_get_interval";

/// Sockets (`socket` itself is allowed below, by family); without a network only local ones work.
const SOCKETS: &str = "\
    socketpair bind listen accept accept4 connect getsockname getpeername getsockopt setsockopt sendto \
    recvfrom sendmsg recvmsg sendmmsg recvmmsg shutdown";

/// System V and POSIX IPC within the container.
const IPC: &str = "\
    shmget shmat shmdt shmctl semget semop semtimedop semctl msgget msgsnd msgrcv msgctl mq_open \
    mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr";

/// Every syscall allowed without conditions.
pub fn allowed() -> impl Iterator<Item = &'static str> {
    [FILES, WAITING, MEMORY, PROCESSES, SIGNALS, TIME, SCHEDULING, SOCKETS, IPC]
        .into_iter()
        .flat_map(str::split_whitespace)
}

/// The profile, as Docker's API takes it (`security_opt: ["seccomp=<this>"]`).
pub fn profile() -> Value {
    let mut rules = vec![json!({ "names": allowed().collect::<Vec<_>>(), "action": "SCMP_ACT_ALLOW" })];
    rules.push(json!({
        "names": ["clone"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{ "index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }],
    }));
    rules.push(json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS }));
    rules.push(json!({
        "names": ["socket"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{ "index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE" }],
    }));
    for value in PERSONALITIES {
        rules.push(json!({
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{ "index": 0, "value": value, "op": "SCMP_CMP_EQ" }],
        }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": rules,
    })
}

/// `seccomp=<profile>`, for the container's security options.
pub fn security_opt() -> String {
    format!("seccomp={}", profile())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_program_needs_is_allowed_and_the_tightened_calls_are_not() {
        let all: Vec<&str> = allowed().collect();
        for needed in ["execve", "openat", "mmap", "futex", "clock_gettime", "exit_group", "rt_sigreturn", "ioctl"] {
            assert!(all.contains(&needed), "{needed}");
        }
        let text = profile().to_string();
        for refused in [
            "\"ptrace\"",
            "process_vm_readv",
            "io_uring",
            "vmsplice",
            "\"mount\"",
            "unshare",
            "setns",
            "bpf",
            "perf_event_open",
            "keyctl",
            "init_module",
            "kexec",
            "reboot",
            "chroot",
            "modify_ldt",
        ] {
            assert!(!text.contains(refused), "{refused} must not be allowed");
        }
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "no syscall is listed twice");
        assert!(!text.contains("SCMP_ARCH_X86\"") && !text.contains("X32"), "64-bit ABIs only");
    }
}
