package io.postcopy.uffd;

/** Linux errno numbers that the binding names in its errors (x86_64 values). */
public final class Errno {
    public static final int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, EBADF = 9,
            EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19,
            EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25, EFBIG = 27, ENOSPC = 28, ESPIPE = 29,
            EROFS = 30, ERANGE = 34, ENOSYS = 38, EOPNOTSUPP = 95, ETIMEDOUT = 110;

    private Errno() {}

    /** The symbolic name of {@code errno}, or {@code "errno N"} when it is not one we name. */
    public static String name(int errno) {
        switch (errno) {
            case EPERM: return "EPERM";
            case ENOENT: return "ENOENT";
            case ESRCH: return "ESRCH";
            case EINTR: return "EINTR";
            case EIO: return "EIO";
            case EBADF: return "EBADF";
            case EAGAIN: return "EAGAIN";
            case ENOMEM: return "ENOMEM";
            case EACCES: return "EACCES";
            case EFAULT: return "EFAULT";
            case EBUSY: return "EBUSY";
            case EEXIST: return "EEXIST";
            case ENODEV: return "ENODEV";
            case EINVAL: return "EINVAL";
            case ENFILE: return "ENFILE";
            case EMFILE: return "EMFILE";
            case ENOTTY: return "ENOTTY";
            case EFBIG: return "EFBIG";
            case ENOSPC: return "ENOSPC";
            case ESPIPE: return "ESPIPE";
            case EROFS: return "EROFS";
            case ERANGE: return "ERANGE";
            case ENOSYS: return "ENOSYS";
            case EOPNOTSUPP: return "EOPNOTSUPP";
            case ETIMEDOUT: return "ETIMEDOUT";
            default: return "errno " + errno;
        }
    }
}
