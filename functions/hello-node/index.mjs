// Greets whoever ?name= or {"name": ...} names; the greeting comes from function.yaml.
export const handler = async (event, context) => {
  const name = event.queryStringParameters?.name ?? event.name ?? 'world';
  console.log(`greeting ${name} in request ${context.awsRequestId}`);
  return { message: `${process.env.GREETING}, ${name}!` };
};
