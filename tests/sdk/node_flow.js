/*
 * Runs user_flow.js with the official SDK in Node: the input as JSON on stdin, the results as JSON
 * on stdout. Whatever the SDK logs goes to stderr, where the tests look for complaints.
 */
'use strict'

const Backendless = require('backendless')
const userFlow = require('./user_flow')

async function main() {
  const chunks = []
  for await (const chunk of process.stdin) {
    chunks.push(chunk)
  }
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  const results = await userFlow(Backendless, input)
  process.stdout.write(JSON.stringify(results))
}

main().catch(error => {
  console.error(error)
  process.exit(1)
})
