package io.postcopy.shell.internal;

import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.api.console.Terminal;

/**
 * Output hygiene shared by the commands: counts with the right plural, addresses as an operator writes them, and
 * whether colour may be used (never when the output goes to a script or a file).
 */
final class Text {
    private Text() {}

    /** {@code 1 range}, {@code 2 ranges}, {@code 0 passes}: English plurals of the nouns the commands use. */
    static String count(long n, String one) {
        return n + " " + (n == 1 ? one : plural(one));
    }

    static String plural(String one) {
        return one.endsWith("s") || one.endsWith("x") || one.endsWith("ch") ? one + "es" : one + "s";
    }

    /**
     * {@code host:port} without the resolver's leading slash: the wildcard as {@code 0.0.0.0} (Java reports a
     * dual-stack bind as {@code 0:0:0:0:0:0:0:0}), an IPv6 address in brackets, a name as it was given.
     */
    static String address(InetSocketAddress a) {
        if (a == null) return "-";
        InetAddress ip = a.getAddress();
        String host;
        if (ip == null) host = a.getHostString();
        else if (ip.isAnyLocalAddress()) host = "0.0.0.0";
        else if (ip instanceof Inet6Address) host = "[" + compact(ip.getHostAddress()) + "]";
        else host = ip.getHostAddress();
        return host + ":" + a.getPort();
    }

    /**
     * An address the migration API printed ({@code InetSocketAddress.toString()}: {@code /127.0.0.1:80} or
     * {@code name/10.0.0.5:80}) as {@link #address(InetSocketAddress)} would: the name if there was one.
     */
    static String address(String printed) {
        if (printed == null) return "-";
        int slash = printed.indexOf('/');
        if (slash < 0) return printed;
        String name = printed.substring(0, slash), rest = printed.substring(slash + 1);
        int colon = rest.lastIndexOf(':');
        String ip = colon < 0 ? rest : rest.substring(0, colon), port = colon < 0 ? "" : rest.substring(colon);
        if (!name.isEmpty()) return name + port;
        if (ip.equals("0:0:0:0:0:0:0:0") || ip.equals("0.0.0.0") || ip.equals("::")) return "0.0.0.0" + port;
        return (ip.contains(":") && !ip.startsWith("[") ? "[" + compact(ip) + "]" : ip) + port;
    }

    /** {@code 0:0:0:0:0:0:0:1} as {@code ::1}: the longest run of zero groups folded, as people write IPv6. */
    static String compact(String ipv6) {
        String[] g = ipv6.split(":", -1);
        if (g.length != 8) return ipv6;
        int bestAt = -1, bestLen = 1;
        for (int i = 0; i < 8; ) {
            int j = i;
            while (j < 8 && g[j].replaceFirst("^0+", "").isEmpty()) j++;
            if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
            i = Math.max(j, i + 1);
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestAt) {
                sb.append(i == 0 ? "::" : ":");
                i += bestLen - 1;
                continue;
            }
            sb.append(g[i].replaceFirst("^0+(?=.)", ""));
            if (i < 7) sb.append(':');
        }
        return sb.toString();
    }

    /**
     * True when the session has a real terminal: an interactive console or SSH shell with a pty. A command run by
     * {@code bin/client "CMD"} (an SSH exec channel) or from a script has none, and its output may go to a file.
     */
    static boolean colours(Session session) {
        if (session == null) return false;
        Terminal t = session.getTerminal();
        return t != null && t.isAnsiSupported() && t.getType() != null && !t.getType().startsWith("dumb");
    }
}
