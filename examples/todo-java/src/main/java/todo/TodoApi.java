package todo;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.events.APIGatewayProxyRequestEvent;
import com.amazonaws.services.lambda.runtime.events.APIGatewayProxyResponseEvent;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Collectors;
import software.amazon.awssdk.services.dynamodb.DynamoDbClient;
import software.amazon.awssdk.services.dynamodb.model.AttributeValue;
import software.amazon.awssdk.services.dynamodb.model.ConditionalCheckFailedException;
import software.amazon.awssdk.services.dynamodb.model.ReturnValue;

/**
 * The Todo REST API (see examples/todo), one method per function. The client is built once per
 * instance, in the init phase: the SDK finds the table API through AWS_ENDPOINT_URL and the
 * region and credentials in the environment, as it finds AWS's on Lambda.
 */
public class TodoApi {
    private static final DynamoDbClient DB = DynamoDbClient.create();
    private static final String TABLE = System.getenv("DYNAMODB_TABLE");
    private static final ObjectMapper JSON = new ObjectMapper();

    public APIGatewayProxyResponseEvent site(APIGatewayProxyRequestEvent event, Context context) {
        try (InputStream page = TodoApi.class.getResourceAsStream("/index.html")) {
            return new APIGatewayProxyResponseEvent()
                .withStatusCode(200)
                .withHeaders(Map.of("Content-Type", "text/html; charset=utf-8"))
                .withBody(new String(page.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public APIGatewayProxyResponseEvent create(APIGatewayProxyRequestEvent event, Context context) {
        JsonNode text = body(event).path("text");
        if (!text.isTextual() || text.asText().isBlank()) {
            context.getLogger().log("Validation failed: text is missing\n");
            return error(400, "Couldn't create the todo item: `text` must be a non-empty string.");
        }
        String now = Long.toString(System.currentTimeMillis());
        Map<String, AttributeValue> item = new HashMap<>();
        item.put("id", AttributeValue.fromS(UUID.randomUUID().toString()));
        item.put("text", AttributeValue.fromS(text.asText()));
        item.put("checked", AttributeValue.fromBool(false));
        item.put("createdAt", AttributeValue.fromN(now));
        item.put("updatedAt", AttributeValue.fromN(now));
        DB.putItem(r -> r.tableName(TABLE).item(item));
        return ok(toJson(item));
    }

    public APIGatewayProxyResponseEvent list(APIGatewayProxyRequestEvent event, Context context) {
        List<ObjectNode> items = DB.scanPaginator(r -> r.tableName(TABLE)).items().stream()
            .map(TodoApi::toJson)
            .sorted(Comparator.comparingLong(i -> i.path("createdAt").asLong()))
            .collect(Collectors.toList());
        ArrayNode out = JSON.createArrayNode();
        out.addAll(items);
        return ok(out);
    }

    public APIGatewayProxyResponseEvent get(APIGatewayProxyRequestEvent event, Context context) {
        Map<String, AttributeValue> item = DB.getItem(r -> r.tableName(TABLE).key(key(event))).item();
        if (item == null || item.isEmpty()) {
            return error(404, "Todo item not found.");
        }
        return ok(toJson(item));
    }

    public APIGatewayProxyResponseEvent update(APIGatewayProxyRequestEvent event, Context context) {
        JsonNode data = body(event);
        JsonNode text = data.path("text");
        JsonNode checked = data.path("checked");
        if (!text.isTextual() || !checked.isBoolean()) {
            return error(400, "Couldn't update the todo item: send `text` (string) and `checked` (boolean).");
        }
        Map<String, AttributeValue> values = new HashMap<>();
        values.put(":text", AttributeValue.fromS(text.asText()));
        values.put(":checked", AttributeValue.fromBool(checked.asBoolean()));
        values.put(":updatedAt", AttributeValue.fromN(Long.toString(System.currentTimeMillis())));
        values.put(":zero", AttributeValue.fromN("0"));
        values.put(":one", AttributeValue.fromN("1"));
        try {
            Map<String, AttributeValue> updated = DB.updateItem(r -> r
                .tableName(TABLE)
                .key(key(event))
                .expressionAttributeNames(Map.of("#todo_text", "text"))
                .expressionAttributeValues(values)
                .updateExpression("SET #todo_text = :text, checked = :checked, updatedAt = :updatedAt, "
                    + "edits = if_not_exists(edits, :zero) + :one")
                .conditionExpression("attribute_exists(id)")
                .returnValues(ReturnValue.ALL_NEW)).attributes();
            return ok(toJson(updated));
        } catch (ConditionalCheckFailedException e) {
            return error(404, "Todo item not found.");
        }
    }

    public APIGatewayProxyResponseEvent delete(APIGatewayProxyRequestEvent event, Context context) {
        DB.deleteItem(r -> r.tableName(TABLE).key(key(event)));
        return ok(JSON.createObjectNode());
    }

    private static Map<String, AttributeValue> key(APIGatewayProxyRequestEvent event) {
        return Map.of("id", AttributeValue.fromS(event.getPathParameters().get("id")));
    }

    private static JsonNode body(APIGatewayProxyRequestEvent event) {
        try {
            return event.getBody() == null ? JSON.missingNode() : JSON.readTree(event.getBody());
        } catch (IOException e) {
            return JSON.missingNode();
        }
    }

    /** A stored item as the JSON the API returns. */
    private static ObjectNode toJson(Map<String, AttributeValue> item) {
        ObjectNode out = JSON.createObjectNode();
        item.forEach((name, value) -> {
            if (value.s() != null) {
                out.put(name, value.s());
            } else if (value.bool() != null) {
                out.put(name, value.bool());
            } else if (value.n() != null) {
                out.put(name, Long.parseLong(value.n()));
            }
        });
        return out;
    }

    private static APIGatewayProxyResponseEvent ok(JsonNode body) {
        return new APIGatewayProxyResponseEvent()
            .withStatusCode(200)
            .withHeaders(Map.of("Content-Type", "application/json", "Access-Control-Allow-Origin", "*"))
            .withBody(body.toString());
    }

    private static APIGatewayProxyResponseEvent error(int status, String message) {
        return new APIGatewayProxyResponseEvent()
            .withStatusCode(status)
            .withHeaders(Map.of("Content-Type", "text/plain"))
            .withBody(message);
    }
}
