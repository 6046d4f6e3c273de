package dev.sylph.launcher.warm;

import com.amazonaws.services.lambda.runtime.Context;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Warm-up dummy: a Class::method POJO handler with nested beans, lists, maps and numbers. */
public class PojoHandler {
    public static class Item {
        private String name;
        private int count;
        private double price;
        private boolean active;
        public String getName() { return name; }
        public void setName(String name) { this.name = name; }
        public int getCount() { return count; }
        public void setCount(int count) { this.count = count; }
        public double getPrice() { return price; }
        public void setPrice(double price) { this.price = price; }
        public boolean isActive() { return active; }
        public void setActive(boolean active) { this.active = active; }
    }

    public static class Order {
        private String id;
        private long createdAt;
        private List<Item> items = new ArrayList<>();
        private Map<String, String> tags;
        public String getId() { return id; }
        public void setId(String id) { this.id = id; }
        public long getCreatedAt() { return createdAt; }
        public void setCreatedAt(long createdAt) { this.createdAt = createdAt; }
        public List<Item> getItems() { return items; }
        public void setItems(List<Item> items) { this.items = items; }
        public Map<String, String> getTags() { return tags; }
        public void setTags(Map<String, String> tags) { this.tags = tags; }
    }

    public Order handle(Order in, Context context) {
        Order out = new Order();
        out.setId(in.getId() + "-done");
        out.setCreatedAt(in.getCreatedAt() + 1);
        out.setItems(in.getItems());
        out.setTags(in.getTags());
        return out;
    }
}
