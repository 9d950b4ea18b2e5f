package io.postcopy.ramblock;

import java.util.List;

/** A block cannot be removed (or removed in time) because leases on it are still open; they are named. */
public class RamBlockInUseException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    private final String idstr;
    private final List<String> holders;

    public RamBlockInUseException(String idstr, List<String> holders, String message) {
        super(message);
        this.idstr = idstr;
        this.holders = List.copyOf(holders);
    }

    /** The block that stays. */
    public String idstr() {
        return idstr;
    }

    /** The holders of its open leases, oldest first. */
    public List<String> holders() {
        return holders;
    }
}
