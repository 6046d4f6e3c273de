package bench;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;
import software.amazon.awssdk.services.dynamodb.DynamoDbClient;

/** Builds a DynamoDB client in the init phase, as Java functions do, and lists the tables. */
public class ListTables implements RequestHandler<Map<String, Object>, Map<String, Object>> {
    private static final DynamoDbClient DB = DynamoDbClient.create();

    @Override
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        return Map.of("tables", DB.listTables().tableNames().size());
    }
}
