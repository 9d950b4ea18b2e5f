package io.postcopy.example.internal;

import io.postcopy.migration.DeviceStateHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import org.osgi.service.component.annotations.Component;

/**
 * The minimal device state handler of docs/extending.md: on the source, {@link #save} writes a short UTF-8
 * text that becomes one device section ({@code example/state}, instance 0, version 1); on the destination,
 * {@link #load} keeps the text it received. A real handler would hand it to its own service.
 */
@Component(service = DeviceStateHandler.class)
public class ExampleDeviceState implements DeviceStateHandler {
    static final int VERSION = 1;

    private volatile String state = "example state v" + VERSION;
    private volatile String loaded;

    @Override
    public String idstr() {
        return "example/state";
    }

    @Override
    public int versionId() {
        return VERSION;
    }

    @Override
    public void save(OutputStream out) throws IOException {
        out.write(state.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void load(InputStream in, int versionId) throws IOException {
        if (versionId > VERSION)
            throw new IOException("example/state version " + versionId + " is newer than this bundle (" + VERSION + ")");
        loaded = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }

    /** The text the last {@link #load} received, or null. */
    String loaded() {
        return loaded;
    }

    @Override
    public String toString() {
        return "ExampleDeviceState[loaded=" + loaded + "]";
    }
}
