package io.postcopy.fault;

/** A refused call on an incoming postcopy: wrong state, or a page or range outside its block. Nothing was touched. */
public class PostcopyException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public PostcopyException(String message) {
        super(message);
    }

    public PostcopyException(String message, Throwable cause) {
        super(message, cause);
    }
}
