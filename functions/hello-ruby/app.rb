# Greets whoever ?name= or {"name": ...} names; the greeting comes from function.yaml.
def handler(event:, context:)
  name = (event["queryStringParameters"] || {})["name"] || event["name"] || "world"
  { message: "#{ENV['GREETING']}, #{name}!" }
end
