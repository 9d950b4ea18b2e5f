package io.postcopy.migration.internal;

import io.postcopy.codec.Command;
import io.postcopy.codec.DeviceSection;
import io.postcopy.codec.PackageContents;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.codec.Wire;
import io.postcopy.migration.DeviceStateHandler;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.util.List;

/**
 * The package sent at the switch (QEMU's order: LISTEN, device sections, PING, RUN) and the delivery of
 * its device sections. A section's body is our handler's bytes behind a be32 length: device sections carry
 * no length on the wire, so the receiver checks the codec's footer-based split against it.
 */
public final class DeviceStates {
    /** QEMU numbers "ram" 2 on x86 machines; device sections follow in registration order. */
    public static final int RAM_SECTION_ID = 2;
    static final int FIRST_DEVICE_SECTION_ID = 3;
    static final int SWITCH_PING = 3;

    private DeviceStates() {
    }

    /**
     * Builds packages for one migration. Made before the guest pauses: its encoder's 72 KiB direct buffer cost ~0.2 ms
     * to allocate and touch here, and building the package is downtime. One package per migration (the switch, or
     * the end of a precopy-only stream), so a failed build never leaves bytes behind for another. The sender's
     * thread only.
     */
    public static final class Packager {
        private boolean built;
        private final ByteArrayOutputStream bos = new ByteArrayOutputStream(256);
        private final StreamEncoder e = new StreamEncoder(Channels.newChannel(bos), 72 * 1024, Wire.DEFAULT_TARGET_PAGE_SIZE);

        /**
         * @param postcopy with LISTEN, PING and RUN (the switch); without, the device sections alone (the end of a
         *                 precopy-only stream)
         */
        public ByteBuffer build(List<DeviceStateHandler> handlers, boolean postcopy) throws IOException {
            if (built) throw new IllegalStateException("one package per migration");
            built = true;
            if (postcopy) e.writeCommand(new Command.PostcopyListen());
            int sid = FIRST_DEVICE_SECTION_ID;
            for (DeviceStateHandler h : handlers) {
                ByteArrayOutputStream body = new ByteArrayOutputStream();
                h.save(body);
                e.writeSectionStart(SectionType.FULL, sid, h.idstr(), h.instanceId(), h.versionId());
                e.flush();
                int n = body.size();
                bos.write(new byte[] {(byte) (n >>> 24), (byte) (n >>> 16), (byte) (n >>> 8), (byte) n});
                body.writeTo(bos);
                e.writeFooter(sid++);
            }
            if (postcopy) {
                e.writeCommand(new Command.Ping(SWITCH_PING));
                e.writeCommand(new Command.PostcopyRun());
            }
            e.flush();
            return ByteBuffer.wrap(bos.toByteArray());
        }
    }

    /** The section's bytes from header through footer. */
    public static byte[] sectionBytes(PackageContents pkg, DeviceSection s) {
        byte[] b = new byte[s.length()];
        pkg.bytes().duplicate().position(s.offset()).get(b);
        return b;
    }

    /**
     * Hands a section to its handler.
     *
     * @throws IOException when the body does not hold exactly one length-prefixed state (a split the codec got
     *                     wrong, or a section not written by a {@link DeviceStateHandler})
     */
    public static void load(PackageContents pkg, DeviceSection s, DeviceStateHandler h) throws IOException {
        int header = 1 + 4 + 1 + s.idstr().length() + 4 + 4;
        int bodyStart = s.offset() + header;
        int bodyLen = s.length() - header - 5;
        ByteBuffer b = pkg.bytes().duplicate().order(ByteOrder.BIG_ENDIAN);
        if (!s.delimited() || bodyLen < 4 || b.getInt(bodyStart) != bodyLen - 4) {
            throw new IOException("device section " + s.idstr() + "/" + s.instanceId() + " at package offset " + s.offset()
                    + ": body of " + bodyLen + " bytes does not hold one length-prefixed state"
                    + (bodyLen >= 4 ? " (prefix " + b.getInt(bodyStart) + ")" : ""));
        }
        byte[] data = new byte[bodyLen - 4];
        b.position(bodyStart + 4).get(data);
        h.load(new ByteArrayInputStream(data), s.versionId());
    }
}
