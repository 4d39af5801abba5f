// Prints graphql-js's getIntrospectionQuery(), the document GraphiQL, graphql-codegen, Apollo
// tooling, Postman and Insomnia send; tests/fixtures/introspection-query.graphql is its output:
//   node tests/tooling/introspection-query.mjs > tests/fixtures/introspection-query.graphql
import { getIntrospectionQuery } from 'graphql';

process.stdout.write(getIntrospectionQuery());
