/*
 * One user's way through the official Backendless SDK, the same in Node (node_flow.js) and in the
 * browser (browser.html): every call a client app makes against userreg, each recorded as
 * {ok: true, value} or {ok: false, code, status, message}, by the name the tests assert it under.
 *
 * input: {serverURL, apps: {open, confirming, closed}: {appId, restApiKey, serverApiKey?},
 *         addresses: {user, pending, agedPending, confirmed, changed, unknown}, password, wrongPassword,
 *         newPassword,
 *         withServerKey}
 *   open: no email confirmation; confirming: email confirmation required; closed: registration off.
 *   agedPending: already registered in `confirming`, its resend cool-down passed.
 *   confirmed: already registered and confirmed in `confirming`; it changes its email to `changed`.
 *   withServerKey: also the calls a server makes with the server API key (never in a browser).
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) {
    module.exports = factory()
  } else {
    root.userFlow = factory()
  }
}(typeof self !== 'undefined' ? self : this, function () {
  // What the tests compare: the user's own fields, never a token or a password.
  function summary(value) {
    if (value === undefined || value === null) {
      return null
    }
    if (typeof value === 'object' && 'objectId' in value) {
      return {
        email       : value.email === undefined ? null : value.email,
        userStatus  : value.userStatus,
        hasObjectId : typeof value.objectId === 'string' && value.objectId.length > 0,
        hasUserToken: typeof value['user-token'] === 'string' && value['user-token'].length > 0,
        hasPassword : 'password' in value,
      }
    }
    return value
  }

  return async function userFlow(Backendless, input) {
    const { apps, addresses, password, wrongPassword, newPassword } = input
    const Users = () => Backendless.UserService
    const results = {}
    // Records the call's outcome under `name`; returns what it answered (undefined when it failed).
    const step = async (name, call) => {
      try {
        const value = await call()
        results[name] = { ok: true, value: summary(value) }
        return value
      } catch (error) {
        results[name] = {
          ok     : false,
          code   : error.code === undefined ? null : error.code,
          status : error.status === undefined ? null : error.status,
          message: String(error.message || error),
        }
      }
    }
    // The server's own answer about a token (after a logout the SDK no longer holds one to ask about).
    const checkToken = token => Backendless.request.get({ url: Backendless.urls.userTokenCheck(token) })

    Backendless.serverURL = input.serverURL
    Backendless.initApp(apps.open.appId, apps.open.restApiKey)
    await step('app info', () => Backendless.appInfoPromise())

    const registered = await step('register', () => Users().register({ email: addresses.user, password, name: 'Ada' }))
    await step('register the same identity again', () => Users().register({ email: addresses.user, password }))
    await step('login with a wrong password', () => Users().login(addresses.user, wrongPassword))
    await step('login with an unknown identity', () => Users().login(addresses.unknown, password))
    await step('login', () => Users().login(addresses.user, password))
    const token = Users().getCurrentUserToken()
    await step('isValidLogin after login', () => Users().isValidLogin())
    await step('isvalidusertoken of the session', () => checkToken(token))

    // The signed-in user's own record: read it again, update it (the SDK sends the whole user
    // back), check the password, describe the schema.
    await step('getCurrentUser(true)', () => Users().getCurrentUser(true))
    const me = await Users().getCurrentUser()
    const myId = me ? me.objectId : undefined
    await step('update', async () => {
      const updated = await Users().update({ ...me, name: 'Ada Lovelace', city: 'London' })
      return { email: updated.email, name: updated.name, city: updated.city, hasPassword: 'password' in updated }
    })
    await step('verifyPassword', () => Users().verifyPassword(password))
    await step('verifyPassword with a wrong password', () => Users().verifyPassword(wrongPassword))
    await step('describeUserClass', async () => {
      const columns = await Users().describeUserClass()
      return { names: columns.map(column => column.name).sort(),
               identity: columns.filter(column => column.identity).map(column => column.name) }
    })
    // A password changed through update ends the user's other sessions, not the one that changed it.
    await step('login again', () => Users().login(addresses.user, password))
    await step('update the password', async () => {
      const updated = await Users().update({ objectId: myId, password: newPassword })
      return 'password' in updated
    })
    await step('isvalidusertoken of the first session after the password change', () => checkToken(token))
    await step('isValidLogin after the password change', () => Users().isValidLogin())
    await step('verifyPassword with the new password', () => Users().verifyPassword(newPassword))
    await step('login with the old password', () => Users().login(addresses.user, password))
    await step('update the password back', async () => {
      const updated = await Users().update({ objectId: myId, password })
      return 'password' in updated
    })
    await step('logout', () => Users().logout())
    await step('isValidLogin after logout', () => Users().isValidLogin())
    await step('isvalidusertoken of the ended session', () => checkToken(token))
    await step('logout with the ended session', () => Backendless.request.get({
      url: Backendless.urls.userLogout(), headers: { 'user-token': token },
    }))

    await step('restorePassword', () => Users().restorePassword(addresses.user))
    await step('restorePassword again at once', () => Users().restorePassword(addresses.user))
    await step('restorePassword of an unknown identity', () => Users().restorePassword(addresses.unknown))

    await step('loginAsGuest', () => Users().loginAsGuest())
    await step('isValidLogin as a guest', () => Users().isValidLogin())
    await step('update another user', () => Users().update({ objectId: myId, name: 'Mallory' }))
    await step('read another user', () => Backendless.Data.of('Users').findById(myId))
    await step('logout as a guest', () => Users().logout())
    await step('resendEmailConfirmation where the app does not confirm emails',
      () => Users().resendEmailConfirmation(addresses.user))

    Backendless.initApp(apps.confirming.appId, apps.confirming.restApiKey)
    await step('register where the app confirms emails', () => Users().register({ email: addresses.pending, password }))
    await step('login before confirming', () => Users().login(addresses.pending, password))
    await step('resendEmailConfirmation within the cool-down', () => Users().resendEmailConfirmation(addresses.pending))
    await step('resendEmailConfirmation', () => Users().resendEmailConfirmation(addresses.agedPending))
    await step('resendEmailConfirmation of an unknown identity',
      () => Users().resendEmailConfirmation(addresses.unknown))
    // A confirmed user changes its address: it keeps the old one until the link emailed to the new
    // one is opened (the test opens it afterwards).
    await step('login where the app confirms emails', () => Users().login(addresses.confirmed, password))
    await step('update the email where the app confirms emails', async () => {
      const current = await Users().getCurrentUser()
      const updated = await Users().update({ ...current, email: addresses.changed })
      return { email: updated.email }
    })
    await step('getCurrentUser(true) while the new address waits', async () => {
      const user = await Users().getCurrentUser(true)
      return user && user.email
    })
    await step('logout where the app confirms emails', () => Users().logout())

    Backendless.initApp(apps.closed.appId, apps.closed.restApiKey)
    await step('register where registration is disabled', () => Users().register({ email: addresses.user, password }))

    if (input.withServerKey) {
      const userId = registered && registered.objectId
      Backendless.initApp(apps.open.appId, apps.open.serverApiKey)
      await step('disableUser', () => Users().disableUser(userId))
      await step('login while disabled', () => Users().login(addresses.user, password))
      await step('enableUser', () => Users().enableUser(userId))
      await step('updateUserStatus to ENABLED again', () => Users().updateUserStatus(userId, 'ENABLED'))
      await step('login once enabled again', () => Users().login(addresses.user, password))
      await step('logout once enabled again', () => Users().logout())

      Backendless.initApp(apps.confirming.appId, apps.confirming.serverApiKey)
      await step('createEmailConfirmationURL is a confirmation link', async () => {
        const { confirmationURL } = await Users().createEmailConfirmationURL(addresses.pending)
        return typeof confirmationURL === 'string' && confirmationURL.includes(`/${apps.confirming.appId}/confirm/`)
      })
    }

    return results
  }
}))
