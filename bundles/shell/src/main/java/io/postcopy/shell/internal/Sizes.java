package io.postcopy.shell.internal;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Sizes as the shell reads and prints them: {@code 256M}, {@code 1G}, {@code 4096K}, {@code 8192} (binary units). */
public final class Sizes {
    private static final Pattern SIZE = Pattern.compile("([0-9]{1,19})([KMGT]?)(i?B)?", Pattern.CASE_INSENSITIVE);

    private Sizes() {}

    /**
     * Parses a size: digits and an optional binary unit K, M, G or T (also KiB, KB, ...); no sign, no
     * fraction, no spaces, nothing after the unit. The result must be positive and fit in a long.
     *
     * @throws IllegalArgumentException with a one-line reason naming the input
     */
    public static long parse(String what, String text) {
        if (text == null || text.isEmpty())
            throw new IllegalArgumentException(what + " is empty; expected a size like 256M, 1G, 4096K or 8192");
        Matcher m = SIZE.matcher(text);
        if (!m.matches())
            throw new IllegalArgumentException(what + " \"" + text + "\" is not a size; expected digits and an optional"
                    + " unit K, M, G or T (binary), like 256M, 1G, 4096K or 8192");
        long n;
        try {
            n = Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(what + " \"" + text + "\" is too large");
        }
        int shift = switch (m.group(2).toUpperCase(Locale.ROOT)) {
            case "K" -> 10;
            case "M" -> 20;
            case "G" -> 30;
            case "T" -> 40;
            default -> 0;
        };
        if (n == 0) throw new IllegalArgumentException(what + " \"" + text + "\" is zero; it must be positive");
        if (n > (Long.MAX_VALUE >> shift)) throw new IllegalArgumentException(what + " \"" + text + "\" is too large");
        return n << shift;
    }

    /** {@code bytes} in the largest binary unit that divides it exactly (4096 → "4K", 3 GiB → "3G"), else bytes. */
    public static String exact(long bytes) {
        String[] units = {"T", "G", "M", "K"};
        int[] shifts = {40, 30, 20, 10};
        for (int i = 0; i < units.length; i++) {
            long unit = 1L << shifts[i];
            if (bytes >= unit && bytes % unit == 0) return (bytes >> shifts[i]) + units[i];
        }
        return Long.toString(bytes);
    }

    /** {@code bytes} rounded to one decimal in a binary unit: "1.5 GiB", "512 B". */
    public static String human(long bytes) {
        if (bytes < 1024) return bytes + " B";
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return (v == Math.rint(v) ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.1f", v))
                + " " + units[u];
    }
}
