package dev.sylph.launcher.warm;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** Warm-up dummy: a RequestStreamHandler that echoes its input. */
public class StreamHandler implements RequestStreamHandler {
    @Override
    public void handleRequest(InputStream input, OutputStream output, Context context) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        byte[] chunk = new byte[4096];
        for (int r; (r = input.read(chunk)) > 0; ) {
            buf.write(chunk, 0, r);
        }
        String s = new String(buf.toByteArray(), StandardCharsets.UTF_8);
        output.write(("{\"echo\":" + s.length() + "}").getBytes(StandardCharsets.UTF_8));
    }
}
