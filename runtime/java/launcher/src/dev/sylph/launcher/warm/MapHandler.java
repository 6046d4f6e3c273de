package dev.sylph.launcher.warm;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.List;
import java.util.Map;

/** Warm-up dummy: the common Map-in, String-out handler shape. */
public class MapHandler implements RequestHandler<Map<String, Object>, String> {
    @Override
    public String handleRequest(Map<String, Object> input, Context context) {
        Object items = input.get("items");
        int n = items instanceof List ? ((List<?>) items).size() : 0;
        return "keys=" + input.keySet().size() + " items=" + n + " fn=" + context.getFunctionName();
    }
}
