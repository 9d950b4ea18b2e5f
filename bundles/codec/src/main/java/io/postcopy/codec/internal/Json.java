package io.postcopy.codec.internal;

import java.util.Map;

/** A tiny JSON writer for the inspector's summaries (no JSON library: the codec has no dependencies). */
final class Json {
    private final StringBuilder s = new StringBuilder();
    private boolean first = true;

    Json open() {
        sep();
        s.append('{');
        first = true;
        return this;
    }

    Json close() {
        s.append('}');
        first = false;
        return this;
    }

    Json openArray() {
        sep();
        s.append('[');
        first = true;
        return this;
    }

    Json closeArray() {
        s.append(']');
        first = false;
        return this;
    }

    Json key(String k) {
        sep();
        string(k);
        s.append(':');
        first = true;
        return this;
    }

    Json value(long v) {
        sep();
        s.append(v);
        return this;
    }

    Json value(String v) {
        sep();
        string(v);
        return this;
    }

    Json counts(Map<String, Long> m) {
        open();
        for (Map.Entry<String, Long> e : m.entrySet()) {
            key(e.getKey()).value(e.getValue());
        }
        return close();
    }

    private void sep() {
        if (!first) {
            s.append(',');
        }
        first = false;
    }

    private void string(String v) {
        s.append('"');
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            switch (c) {
                case '"': s.append("\\\""); break;
                case '\\': s.append("\\\\"); break;
                case '\n': s.append("\\n"); break;
                case '\r': s.append("\\r"); break;
                case '\t': s.append("\\t"); break;
                case '\b': s.append("\\b"); break;
                case '\f': s.append("\\f"); break;
                default:
                    if (c < 0x20 || c == 0x2028 || c == 0x2029) {
                        s.append(String.format("\\u%04x", (int) c));
                    } else {
                        s.append(c);
                    }
            }
        }
        s.append('"');
    }

    @Override
    public String toString() {
        return s.toString();
    }
}
