//! The CloudFormation intrinsics Sylph can answer locally.
//!
//! Manifests use `!Ref`, `!GetAtt`, `!Sub` and `!Join` mostly to hand resource names and ARNs
//! to functions through `environment`. Sylph creates those resources itself, so it knows their
//! names; anything it cannot know (an `!ImportValue` from another stack) stays unresolved and
//! the caller decides whether that is an error.

use serde_json::Value;
use sylph_model::LOCAL_ACCOUNT_ID;

pub struct Stack<'a> {
    pub name: String,
    pub region: &'a str,
    /// `resources.Resources` of the manifest.
    pub resources: &'a Value,
    /// Logical ids Serverless Framework gives functions (`HelloLambdaFunction`) and their names.
    pub functions: Vec<(String, String)>,
    /// Values the operator gives for what lives outside the service (`ImportValue`,
    /// `GetAtt`, `Ref` sections of the parameters file).
    pub params: &'a crate::params::Params,
    /// The values of `resources.Conditions`, for `Fn::If`.
    pub conditions: &'a std::collections::HashMap<String, bool>,
}

/// Properties that carry a resource's physical name, by resource type.
const NAME_PROPERTIES: &[&str] = &[
    "TableName",
    "QueueName",
    "BucketName",
    "TopicName",
    "StreamName",
    "FunctionName",
    "RoleName",
    "Name",
];

impl Stack<'_> {
    /// Resolve an intrinsic (or a plain scalar) to a string, or `None` if it cannot be known here.
    pub fn resolve(&self, value: &Value) -> Option<String> {
        self.resolve_depth(value, 0)
    }

    fn resolve_depth(&self, value: &Value, depth: u32) -> Option<String> {
        if depth > 16 {
            return None;
        }
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Object(map) if map.len() == 1 => {
                let (func, arg) = map.iter().next()?;
                match func.as_str() {
                    "Ref" => self.reference(arg.as_str()?, depth),
                    "Fn::If" => {
                        let chosen = crate::conditions::chosen_branch(value, self.conditions, "").ok()??;
                        self.resolve_depth(&chosen, depth + 1)
                    }
                    "Fn::ImportValue" => {
                        let name = self.resolve_depth(arg, depth + 1)?;
                        self.params.get("ImportValue", &name).map(str::to_owned)
                    }
                    "Fn::GetAtt" => {
                        let (res, attr) = match arg {
                            Value::Array(a) if a.len() == 2 => (a[0].as_str()?, a[1].as_str()?),
                            Value::String(s) => s.split_once('.')?,
                            _ => return None,
                        };
                        self.attribute(res, attr, depth)
                    }
                    "Fn::Join" => {
                        let a = arg.as_array()?;
                        let sep = a.first()?.as_str()?;
                        let items = a.get(1)?.as_array()?;
                        let parts: Option<Vec<String>> =
                            items.iter().map(|i| self.resolve_depth(i, depth + 1)).collect();
                        Some(parts?.join(sep))
                    }
                    "Fn::Sub" => match arg {
                        Value::String(template) => self.substitute(template, None, depth),
                        Value::Array(a) if a.len() == 2 => self.substitute(a[0].as_str()?, a[1].as_object(), depth),
                        _ => None,
                    },
                    "Fn::Select" => {
                        let a = arg.as_array()?;
                        let index: usize = match &a[0] {
                            Value::Number(n) => n.as_u64()? as usize,
                            Value::String(s) => s.parse().ok()?,
                            _ => return None,
                        };
                        self.resolve_depth(a.get(1)?.as_array()?.get(index)?, depth + 1)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn reference(&self, name: &str, depth: u32) -> Option<String> {
        if let Some(given) = self.params.get("Ref", name) {
            return Some(given.to_owned());
        }
        match name {
            "AWS::Region" => return Some(self.region.to_owned()),
            "AWS::AccountId" => return Some(LOCAL_ACCOUNT_ID.to_owned()),
            "AWS::StackName" => return Some(self.name.clone()),
            "AWS::Partition" => return Some("aws".into()),
            "AWS::URLSuffix" => return Some("amazonaws.com".into()),
            "AWS::NoValue" => return None,
            _ => {}
        }
        if let Some((_, fname)) = self.functions.iter().find(|(id, _)| id == name) {
            return Some(fname.clone());
        }
        let resource = self.resources.get(name)?;
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        let physical = self.physical_name(name, depth)?;
        // Ref gives the name for most types, but the ARN for topics and the URL for queues.
        Some(match kind {
            "AWS::SNS::Topic" => self.arn(kind, &physical),
            "AWS::SQS::Queue" => {
                format!("http://sqs.{}.localhost/{LOCAL_ACCOUNT_ID}/{physical}", self.region)
            }
            _ => physical,
        })
    }

    pub fn physical_name(&self, logical_id: &str, depth: u32) -> Option<String> {
        let resource = self.resources.get(logical_id)?;
        let props = resource.get("Properties");
        for key in NAME_PROPERTIES {
            if let Some(v) = props.and_then(|p| p.get(*key)) {
                return self.resolve_depth(v, depth + 1);
            }
        }
        // CloudFormation generates `<stack>-<logicalId>-<random>`; locally the suffix is dropped.
        Some(format!("{}-{logical_id}", self.name))
    }

    fn attribute(&self, logical_id: &str, attr: &str, depth: u32) -> Option<String> {
        if let Some(given) = self.params.get("GetAtt", &format!("{logical_id}.{attr}")) {
            return Some(given.to_owned());
        }
        if let Some((_, fname)) = self.functions.iter().find(|(id, _)| id == logical_id) {
            return match attr {
                "Arn" => Some(format!(
                    "arn:aws:lambda:{}:{LOCAL_ACCOUNT_ID}:function:{fname}",
                    self.region
                )),
                _ => None,
            };
        }
        let resource = self.resources.get(logical_id)?;
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        let name = self.physical_name(logical_id, depth)?;
        match attr {
            "Arn" => Some(self.arn(kind, &name)),
            "StreamArn" => Some(format!("{}/stream/local", self.arn(kind, &name))),
            "QueueName" | "TopicName" | "Name" => Some(name),
            "QueueUrl" => self.reference(logical_id, depth),
            _ => None,
        }
    }

    fn arn(&self, kind: &str, name: &str) -> String {
        let region = self.region;
        match kind {
            "AWS::DynamoDB::Table" => {
                format!("arn:aws:dynamodb:{region}:{LOCAL_ACCOUNT_ID}:table/{name}")
            }
            "AWS::SQS::Queue" => format!("arn:aws:sqs:{region}:{LOCAL_ACCOUNT_ID}:{name}"),
            "AWS::SNS::Topic" => format!("arn:aws:sns:{region}:{LOCAL_ACCOUNT_ID}:{name}"),
            "AWS::S3::Bucket" => format!("arn:aws:s3:::{name}"),
            "AWS::IAM::Role" => format!("arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{name}"),
            "AWS::Kinesis::Stream" => {
                format!("arn:aws:kinesis:{region}:{LOCAL_ACCOUNT_ID}:stream/{name}")
            }
            _ => format!("arn:aws:local:{region}:{LOCAL_ACCOUNT_ID}:{name}"),
        }
    }

    /// `Fn::Sub`: `${Name}`, `${Name.Attr}` and `${AWS::Region}`; `${!Literal}` stays literal.
    fn substitute(&self, template: &str, vars: Option<&serde_json::Map<String, Value>>, depth: u32) -> Option<String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}')?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.and_then(|m| m.get(name)) {
                out.push_str(&self.resolve_depth(v, depth + 1)?);
            } else if let Some((res, attr)) = name.split_once('.') {
                out.push_str(&self.attribute(res, attr, depth + 1)?);
            } else {
                out.push_str(&self.reference(name, depth + 1)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static NO_PARAMS: std::sync::LazyLock<crate::params::Params> = std::sync::LazyLock::new(Default::default);
    static NO_CONDITIONS: std::sync::LazyLock<std::collections::HashMap<String, bool>> =
        std::sync::LazyLock::new(Default::default);

    fn stack(resources: &Value) -> Stack<'_> {
        Stack {
            name: "todo-dev".into(),
            region: "us-east-1",
            resources,
            functions: vec![],
            params: &NO_PARAMS,
            conditions: &NO_CONDITIONS,
        }
    }

    #[test]
    fn ref_and_getatt_of_a_table() {
        let res = json!({"Todos": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "todo-dev"}}});
        let s = stack(&res);
        assert_eq!(s.resolve(&json!({"Ref": "Todos"})).unwrap(), "todo-dev");
        assert_eq!(
            s.resolve(&json!({"Fn::GetAtt": ["Todos", "Arn"]})).unwrap(),
            "arn:aws:dynamodb:us-east-1:000000000000:table/todo-dev"
        );
    }

    #[test]
    fn sub_and_join() {
        let res =
            json!({"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "${AWS::StackName}-q"}}}});
        let s = stack(&res);
        assert_eq!(
            s.resolve(&json!({"Fn::GetAtt": ["Q", "QueueName"]})).unwrap(),
            "todo-dev-q"
        );
        assert_eq!(
            s.resolve(&json!({"Fn::Join": [":", ["a", {"Ref": "AWS::Region"}]]}))
                .unwrap(),
            "a:us-east-1"
        );
        assert_eq!(s.resolve(&json!({"Fn::ImportValue": "x"})), None);
        assert_eq!(s.resolve(&json!({"Ref": "Missing"})), None);
    }
}
