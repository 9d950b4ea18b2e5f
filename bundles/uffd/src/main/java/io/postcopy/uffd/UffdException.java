package io.postcopy.uffd;

/**
 * A failed kernel call: the operation, its arguments and the errno (number and name).
 * Unchecked, because every caller of the binding is either able to report it as the failure of a
 * migration step or is a bug.
 */
public class UffdException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String operation;
    private final int errno;

    public UffdException(String operation, String arguments, int errno) {
        super(operation + "(" + arguments + ") failed: " + Errno.name(errno) + " (" + errno + ")");
        this.operation = operation;
        this.errno = errno;
    }

    public String operation() { return operation; }

    public int errno() { return errno; }

    public String errnoName() { return Errno.name(errno); }
}
